// Shared by benchc.c and benchd.c: whole sends, and sendfile() of N bytes
// from a 64 MiB memfd filled with a repeating pattern (so neither side pays
// for copying or generating body bytes).
#pragma once


#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define SRC_BYTES (64L << 20)

static int src_fd = -1;

// Creates the memfd with the pattern 'first', 'first'+1, ... 26 letters.
static int make_source(const char* name, char first) {
  src_fd = memfd_create(name, 0);
  if (src_fd < 0 || ftruncate(src_fd, SRC_BYTES) != 0) {
    perror("memfd");
    return 0;
  }
  char* map = mmap(NULL, SRC_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, src_fd, 0);
  if (map == MAP_FAILED) {
    perror("mmap");
    return 0;
  }
  for (long i = 0; i < SRC_BYTES; ++i) map[i] = (char)(first + (i % 26));
  munmap(map, SRC_BYTES);
  return 1;
}

static int send_all(int fd, const char* data, size_t length, int flags) {
  while (length > 0) {
    ssize_t n = send(fd, data, length, flags | MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      length -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
  return 1;
}

// Sends `size` bytes of the source, wrapping around its end.
static int send_source_bytes(int fd, uint64_t size) {
  off_t offset = 0;
  while (size > 0) {
    if (offset >= SRC_BYTES) offset = 0;
    size_t want = (size_t)(SRC_BYTES - offset);
    if (want > size) want = (size_t)size;
    ssize_t n = sendfile(fd, src_fd, &offset, want);
    if (n > 0) {
      size -= (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
  return 1;
}
