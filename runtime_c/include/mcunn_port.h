/**
 * @file mcunn_port.h
 * @brief The whole porting surface: a cycle counter, a print, an assert. Override any macro with -D
 *        or by defining it before this header is included.
 */
#ifndef MCUNN_PORT_H
#define MCUNN_PORT_H

#include <stdint.h>

/** Returns a free-running 32-bit cycle (or instruction) counter; 0 when the port has none. */
#ifndef MCU_PORT_CYCLES
#define MCU_PORT_CYCLES() (0u)
#endif

/** Prints a NUL-terminated string (used only by firmware mains and debug builds). */
#ifndef MCU_PORT_PRINT
#define MCU_PORT_PRINT(s) ((void)(s))
#endif

/** Checks an internal invariant; compiled out unless MCU_PORT_ENABLE_ASSERT is defined. */
#ifndef MCU_PORT_ASSERT
#ifdef MCU_PORT_ENABLE_ASSERT
#include <assert.h>
#define MCU_PORT_ASSERT(x) assert(x)
#else
#define MCU_PORT_ASSERT(x) ((void)0)
#endif
#endif

/** Alignment used for the arena. */
#ifndef MCU_PORT_ALIGN
#define MCU_PORT_ALIGN 16
#endif

#endif /* MCUNN_PORT_H */
