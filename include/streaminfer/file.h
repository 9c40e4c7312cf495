/* Whole-range reads for the format parsers, which read small headers and tables
 * before the streaming I/O is set up. */
#ifndef STREAMINFER_FILE_H
#define STREAMINFER_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly n bytes at off, retrying short reads and EINTR: 0, or -1 when the file
 * ends first or a read fails (errno tells which; 0 at end of file). */
int si_pread_exact(int fd, void *buf, size_t n, uint64_t off);

#endif
