// benchd: a deliberately cheap HTTP/1.1 backend for tests/bench/run.sh.
//
// It must never be the bottleneck of a proxy benchmark on a 2-core machine,
// so it spends as little CPU per byte as Linux allows:
//   GET|HEAD /blob[?size=N]      200, Content-Length N (default: argv[2]),
//                                body sent with sendfile() from a 64 MiB memfd
//   PUT|PATCH|POST /upload...    reads the body (Content-Length or chunked) and
//                                discards it with recv(MSG_TRUNC) (no copy),
//                                answers 201, Content-Length: 0,
//                                X-Received: <body bytes>
//   GET /v2/                     200 application/json "{}"
//   anything else                404
// Keep-alive HTTP/1.1, one thread per connection (blocking sockets).
// Listens on 127.0.0.1 only. Usage: benchd PORT [DEFAULT_BLOB_BYTES]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_io.h"

#define BUF_BYTES (64 * 1024)

static uint64_t default_blob = 1ULL << 30;

typedef struct {
  int fd;
  char buf[BUF_BYTES];
  size_t start, end;  // unread bytes are buf[start, end)
  size_t fill_max;    // largest single recv() into buf (small while
                      // parsing chunk framing, so payload is not copied)
} conn_t;

// Makes at least one more byte available; 0 on EOF/error.
static int fill(conn_t* c) {
  if (c->start == c->end) c->start = c->end = 0;
  if (c->end == BUF_BYTES) {
    if (c->start == 0) return 0;  // line or head too long
    memmove(c->buf, c->buf + c->start, c->end - c->start);
    c->end -= c->start;
    c->start = 0;
  }
  for (;;) {
    size_t room = BUF_BYTES - c->end;
    if (room > c->fill_max) room = c->fill_max;
    ssize_t n = recv(c->fd, c->buf + c->end, room, 0);
    if (n > 0) {
      c->end += (size_t)n;
      return 1;
    }
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

// Discards n body bytes: first what is buffered, then straight from the
// socket without copying.
static int skip(conn_t* c, uint64_t n) {
  size_t have = c->end - c->start;
  size_t take = have < n ? have : (size_t)n;
  c->start += take;
  n -= take;
  while (n > 0) {
    size_t want = n > (16u << 20) ? (16u << 20) : (size_t)n;
    ssize_t got = recv(c->fd, c->buf, want, MSG_TRUNC);
    if (got > 0) {
      n -= (uint64_t)got;
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    return 0;
  }
  return 1;
}

// Returns a pointer to the next CRLF-terminated line (NUL-terminated, CRLF
// stripped) or NULL.
static char* read_line(conn_t* c) {
  for (;;) {
    char* base = c->buf + c->start;
    size_t have = c->end - c->start;
    char* nl = memchr(base, '\n', have);
    if (nl) {
      c->start += (size_t)(nl - base) + 1;
      if (nl > base && nl[-1] == '\r') nl[-1] = 0;
      *nl = 0;
      return base;
    }
    if (!fill(c)) return NULL;
  }
}

// Reads and discards a chunked body; returns the payload size or -1.
static int64_t skip_chunked(conn_t* c) {
  int64_t total = 0;
  for (int guard = 0; guard < 100000000; ++guard) {
    char* line = read_line(c);
    if (!line) return -1;
    char* end = NULL;
    errno = 0;
    unsigned long long size = strtoull(line, &end, 16);
    if (end == line || errno) return -1;
    if (size == 0) {
      // Trailers up to the empty line.
      for (int t = 0; t < 1000; ++t) {
        char* trailer = read_line(c);
        if (!trailer) return -1;
        if (*trailer == 0) return total;
      }
      return -1;
    }
    if (!skip(c, size)) return -1;
    total += (int64_t)size;
    char* crlf = read_line(c);
    if (!crlf || *crlf) return -1;
  }
  return -1;
}

static void* serve(void* arg) {
  conn_t* c = arg;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (;;) {
    char* line = read_line(c);
    if (!line) break;
    if (*line == 0) continue;  // tolerate stray CRLF between requests
    char method[16] = {0}, target[2048] = {0}, version[16] = {0};
    if (sscanf(line, "%15s %2047s %15s", method, target, version) != 3) break;
    int64_t content_length = -1;
    int chunked = 0, close_after = strcmp(version, "HTTP/1.1") != 0;
    for (int h = 0;; ++h) {
      char* header = read_line(c);
      if (!header || h > 200) goto done;
      if (*header == 0) break;
      char* colon = strchr(header, ':');
      if (!colon) continue;
      *colon = 0;
      char* value = colon + 1;
      while (*value == ' ' || *value == '\t') ++value;
      if (!strcasecmp(header, "Content-Length")) content_length = strtoll(value, NULL, 10);
      else if (!strcasecmp(header, "Transfer-Encoding") && strcasestr(value, "chunked")) chunked = 1;
      else if (!strcasecmp(header, "Connection") && strcasestr(value, "close")) close_after = 1;
      else if (!strcasecmp(header, "Connection") && strcasestr(value, "keep-alive")) close_after = 0;
    }
    int64_t received = 0;
    if (chunked) {
      c->fill_max = 512;
      received = skip_chunked(c);
      c->fill_max = BUF_BYTES;
      if (received < 0) break;
    } else if (content_length > 0) {
      if (!skip(c, (uint64_t)content_length)) break;
      received = content_length;
    }
    char head[512];
    int is_head = !strcmp(method, "HEAD");
    const char* conn_hdr = close_after ? "Connection: close\r\n" : "";
    if ((!strcmp(method, "GET") || is_head) && !strncmp(target, "/blob", 5)) {
      uint64_t size = default_blob;
      char* q = strstr(target, "size=");
      if (q) size = strtoull(q + 5, NULL, 10);
      int n = snprintf(head, sizeof head,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: %llu\r\n%s\r\n",
                       (unsigned long long)size, conn_hdr);
      if (!send_all(c->fd, head, (size_t)n, is_head ? 0 : MSG_MORE)) break;
      if (!is_head && !send_source_bytes(c->fd, size)) break;
    } else if (!strncmp(target, "/upload", 7) &&
               (!strcmp(method, "PUT") || !strcmp(method, "PATCH") || !strcmp(method, "POST"))) {
      int n = snprintf(head, sizeof head,
                       "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Received: %lld\r\n%s\r\n",
                       (long long)received, conn_hdr);
      if (!send_all(c->fd, head, (size_t)n, 0)) break;
    } else if ((!strcmp(method, "GET") || is_head) && !strcmp(target, "/v2/")) {
      int n = snprintf(head, sizeof head,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Docker-Distribution-API-Version: registry/2.0\r\nContent-Length: 2\r\n%s\r\n%s",
                       conn_hdr, is_head ? "" : "{}");
      if (!send_all(c->fd, head, (size_t)n, 0)) break;
    } else {
      int n = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n%s\r\n", conn_hdr);
      if (!send_all(c->fd, head, (size_t)n, 0)) break;
    }
    if (close_after) break;
  }
done:
  close(c->fd);
  free(c);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: benchd PORT [DEFAULT_BLOB_BYTES]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  if (argc > 2) default_blob = strtoull(argv[2], NULL, 10);

  if (!make_source("benchd-blob", 'a')) return 1;

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 1024) != 0) {
    perror("bind/listen");
    return 1;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  fprintf(stderr, "benchd: listening on 127.0.0.1:%d\n", port);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        usleep(10000);
        continue;
      }
      perror("accept");
      return 1;
    }
    conn_t* c = malloc(sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->start = c->end = 0;
    c->fill_max = BUF_BYTES;
    pthread_t thread;
    if (pthread_create(&thread, &attr, serve, c) != 0) {
      close(fd);
      free(c);
    }
  }
}
