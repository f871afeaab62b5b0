/// The console's page, style and script, embedded in the binary (no CDN, works offline).
/// The script renders with DOM text nodes only (`textContent`, never `innerHTML`), so keys,
/// values, headers and names from clients always show as text.
enum ConsoleAssets {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tidemark console</title>
<link rel="stylesheet" href="/console.css">
<script src="/console.js" defer></script>
</head>
<body>
<header>
  <span class="brand">Tidemark</span>
  <nav>
    <a href="/" data-nav="overview">Overview</a>
    <a href="/topics" data-nav="topics">Topics</a>
    <a href="/groups" data-nav="groups">Consumer groups</a>
    <a href="/queues" data-nav="queues">Queues</a>
  </nav>
  <form id="token-form" autocomplete="off">
    <input id="token" type="password" autocomplete="off" placeholder="auth token" aria-label="auth token">
    <button type="submit">Use</button>
  </form>
  <span class="live" id="live">connecting…</span>
</header>
<div id="errors" role="alert"></div>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
"""#

    static let style = #"""
:root { --fg: #1d232b; --muted: #5f6b7a; --line: #d9dee5; --bg: #f6f8fa; --card: #fff; --accent: #0b6bcb; --bad: #b42318; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 18px; padding: 10px 20px; background: #14202e; color: #fff; }
header .brand { font-weight: 700; letter-spacing: .3px; }
header nav a { color: #cfe3ff; text-decoration: none; margin-right: 14px; }
header nav a.active { color: #fff; font-weight: 600; border-bottom: 2px solid #7ab8ff; }
header .live { margin-left: auto; font-size: 12px; color: #9fb3c8; }
header form { display: flex; gap: 6px; }
header input { width: 150px; padding: 3px 6px; border-radius: 4px; border: 0; }
main { padding: 18px 20px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 14px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.alert td { background: #fff4f2; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; background: #e7edf5; color: #33475b; margin-left: 6px; }
.badge.bad { background: #fde4e1; color: var(--bad); }
.badge.warn { background: #fff1cc; color: var(--warn); }
a { color: var(--accent); }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; max-height: 320px; overflow: auto; }
.muted { color: var(--muted); }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin: 8px 0 10px; }
.controls label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.controls input, .controls select { padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
button { padding: 5px 12px; border-radius: 5px; border: 1px solid #b8c4d1; background: #fff; cursor: pointer; font: inherit; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
button:disabled { opacity: .5; cursor: not-allowed; }
.notice { padding: 8px 12px; border-radius: 6px; margin: 8px 0; background: #eef5ff; border: 1px solid #c8dcf7; }
.notice.bad { background: #fff4f2; border-color: #f3c3bb; color: var(--bad); }
#errors:empty { display: none; }
#errors { margin: 10px 20px; padding: 8px 12px; background: #fff4f2; border: 1px solid #f3c3bb; color: var(--bad); white-space: pre-wrap; }
svg.chart { background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
svg.chart polyline { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart text { font-size: 11px; fill: var(--muted); }
svg.chart line { stroke: var(--line); }
"""#

    static let script = ConsoleScript.source
}
