// CRC-32C (Castagnoli). Hardware path: the SSE4.2 crc32 instruction, with three
// independent chains over long inputs combined by carry-less "shift" tables.
// Portable path: slicing-by-8 tables built once at first use.
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table8[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table8[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table8[0][n];
        for (int t = 1; t < 8; t++) {
            c = table8[0][c & 0xFF] ^ (c >> 8);
            table8[t][n] = c;
        }
    }
}

static uint32_t portable_raw(uint32_t crc, const uint8_t *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) {
        crc = table8[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table8[7][w & 0xFF] ^ table8[6][(w >> 8) & 0xFF] ^ table8[5][(w >> 16) & 0xFF] ^
              table8[4][(w >> 24) & 0xFF] ^ table8[3][(w >> 32) & 0xFF] ^
              table8[2][(w >> 40) & 0xFF] ^ table8[1][(w >> 48) & 0xFF] ^ table8[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table8[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

uint32_t tidemark_crc32c_extend_portable(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&table_once, build_tables);
    return ~portable_raw(~crc, (const uint8_t *)bytes, length);
}

#if defined(__x86_64__)
#include <nmmintrin.h>

// Multiplying a CRC by x^(8*STRIDE) modulo the polynomial, as four byte tables:
// shifts chain A's value past the bytes that chains B and C covered.
#define STRIDE 4096
static uint32_t shift_table[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

// (a * b) mod P over GF(2), reflected.
static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (int i = 0; i < 32; i++) {
        if (b & 0x80000000u) product ^= a;
        b <<= 1;
        a = (a & 1) ? (a >> 1) ^ POLY : a >> 1;
    }
    return product;
}

static void build_shift_table(void) {
    // x^(8*STRIDE - 33) ... computed by repeated squaring of x^1 in reflected form,
    // then each table entry is the byte value (placed at its lane) times that power.
    uint32_t power = 0x40000000u;  // x^1 in reflected representation
    uint32_t result = 0x80000000u; // x^0
    // We need x^(8*STRIDE*... ) applied to a 32-bit CRC: multiply by x^(8*STRIDE).
    unsigned long e = 8ul * STRIDE;
    while (e) {
        if (e & 1) result = gf2_multiply(result, power);
        power = gf2_multiply(power, power);
        e >>= 1;
    }
    for (uint32_t lane = 0; lane < 4; lane++)
        for (uint32_t b = 0; b < 256; b++)
            shift_table[lane][b] = gf2_multiply(b << (8 * lane), result);
}

static inline uint32_t shift_crc(uint32_t crc) {
    return shift_table[0][crc & 0xFF] ^ shift_table[1][(crc >> 8) & 0xFF] ^
           shift_table[2][(crc >> 16) & 0xFF] ^ shift_table[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t hardware_raw(uint32_t crc, const uint8_t *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    uint64_t c0 = crc;
    while (n >= 3 * STRIDE) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *p1 = p + STRIDE, *p2 = p + 2 * STRIDE;
        for (size_t i = 0; i < STRIDE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p1 + i, 8);
            memcpy(&w2, p2 + i, 8);
            c0 = _mm_crc32_u64(c0, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        // Raw (non-inverted) CRCs are linear: crc(A||B) = shift(crc(A)) ^ crc(B).
        c0 = shift_crc((uint32_t)c0) ^ (uint32_t)c1;
        c0 = shift_crc((uint32_t)c0) ^ (uint32_t)c2;
        p += 3 * STRIDE;
        n -= 3 * STRIDE;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c0 = _mm_crc32_u64(c0, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c0;
    while (n--) crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

static int hardware_available = -1;

static void detect(void) {
    __builtin_cpu_init();
    hardware_available = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    build_shift_table();
}

int tidemark_crc32c_is_hardware_accelerated(void) {
    pthread_once(&shift_once, detect);
    return hardware_available;
}

uint32_t tidemark_crc32c_extend(uint32_t crc, const void *bytes, size_t length) {
    if (tidemark_crc32c_is_hardware_accelerated())
        return ~hardware_raw(~crc, (const uint8_t *)bytes, length);
    return tidemark_crc32c_extend_portable(crc, bytes, length);
}

#else

int tidemark_crc32c_is_hardware_accelerated(void) { return 0; }

uint32_t tidemark_crc32c_extend(uint32_t crc, const void *bytes, size_t length) {
    return tidemark_crc32c_extend_portable(crc, bytes, length);
}

#endif
