# Sourced by the scripts in tools/: installs what the build and the tests need when missing.

apt_install_missing() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# liblz4-dev, zlib1g-dev, libzstd-dev, libsnappy-dev and pkg-config: the codecs' system
# library targets (CLZ4, CZlib, CZstd, CSnappy).
ensure_build_dependencies() {
    apt_install_missing liblz4-dev zlib1g-dev libzstd-dev libsnappy-dev pkg-config
}

# kcat (librdkafka 2.0.2), prometheus (and promtool) for the metrics and dashboard tests, chromium for
# the console tests (headless), Go with Debian's sarama 1.22 source (Tests/interop/sarama, built
# offline in GOPATH mode), Burrow with the ZooKeeper it coordinates through (Tests/interop/test_burrow.py)
# and a virtualenv with the Python Kafka clients and Celery.
ensure_interop_dependencies() {
    apt_install_missing kcat golang-go golang-github-shopify-sarama-dev prometheus chromium burrow zookeeper
    local venv=".build/interop-venv"
    if [ ! -x "$venv/bin/pytest" ] || ! cmp -s Tests/interop/requirements.txt "$venv/requirements.txt"; then
        echo "creating $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r Tests/interop/requirements.txt
        cp Tests/interop/requirements.txt "$venv/requirements.txt"
    fi
}
