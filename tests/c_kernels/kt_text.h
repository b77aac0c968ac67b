/* Text output of the kernel test and benchmark programs (kernel_main.c, packed_main.c, add_main.c, bench_main.c,
 * packed_bench_main.c): lines built in a local buffer with kt_put_str / kt_put_int / kt_put_u64 (no printf: the
 * firmware links no formatted output) and printed with kt_print: stdout on the host (KT_HOST), the board port's
 * print (semihosting) in the firmware. The harness (harness.py) reads the "MCU ..." lines. */
#ifndef KT_TEXT_H
#define KT_TEXT_H

#include <stdint.h>

#ifdef KT_HOST
#include <stdio.h>
static inline void kt_print(const char *s)
{
    fputs(s, stdout);
}
#else
#include "board_port.h"
static inline void kt_print(const char *s)
{
    board_print(s);
}
#endif

/* Appends s at p; returns the end. */
static inline char *kt_put_str(char *p, const char *s)
{
    while (*s)
    {
        *p++ = *s++;
    }
    return p;
}

/* Appends v in decimal at p; returns the end. */
static inline char *kt_put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
    {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n)
    {
        *p++ = tmp[--n];
    }
    return p;
}

/* Appends v in decimal (a '-' first when negative) at p; returns the end. */
static inline char *kt_put_int(char *p, int64_t v)
{
    if (v < 0)
    {
        *p++ = '-';
        return kt_put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return kt_put_u64(p, (uint64_t)v);
}

/* Prints "MCU <what> <cases> failed <failed>" and "MCU END <failed>", the last lines of a test program. */
static inline void kt_print_summary(const char *what, int32_t cases, int32_t failed)
{
    char line[128];
    char *p = kt_put_str(line, "MCU ");
    p = kt_put_str(p, what);
    p = kt_put_str(p, " ");
    p = kt_put_int(p, cases);
    p = kt_put_str(p, " failed ");
    p = kt_put_int(p, failed);
    p = kt_put_str(p, "\nMCU END ");
    p = kt_put_int(p, failed);
    p = kt_put_str(p, "\n");
    *p = '\0';
    kt_print(line);
}

#endif /* KT_TEXT_H */
