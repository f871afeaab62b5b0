#ifndef TIDEMARK_CRC32C_H
#define TIDEMARK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) over `length` bytes.
/// `crc` is the value returned by a previous call, or 0 to start. The pre- and
/// post-inversion are applied inside, so chaining calls equals one call over the
/// concatenated bytes. crc32c("123456789") == 0xE3069283.
uint32_t tidemark_crc32c_extend(uint32_t crc, const void *bytes, size_t length);

/// The same, always with the portable table-driven code (for tests and comparison).
uint32_t tidemark_crc32c_extend_portable(uint32_t crc, const void *bytes, size_t length);

/// 1 when the hardware (SSE4.2) path is in use, 0 otherwise.
int tidemark_crc32c_is_hardware_accelerated(void);

#endif
