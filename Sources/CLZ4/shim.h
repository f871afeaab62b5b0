#ifndef TIDEMARK_CLZ4_SHIM_H
#define TIDEMARK_CLZ4_SHIM_H
#include <lz4.h>
#include <lz4frame.h>
#endif
