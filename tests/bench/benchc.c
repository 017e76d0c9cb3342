// benchc: a deliberately cheap HTTP/1.1 load client for tests/bench/run.sh.
//
//   benchc get PORT PATH CONNS
//       CONNS parallel connections each GET PATH once; the body is discarded
//       with recv(MSG_TRUNC) (no copy into user space; BENCH_CLIENT_COPY=1
//       copies into a 256 KiB buffer instead, as a real client would).
//       Checks status 200 and that exactly Content-Length bytes arrived.
//   benchc put PORT PATH BYTES CONNS [CHUNK]
//       CONNS parallel connections each PUT BYTES bytes; without CHUNK with
//       Content-Length, with CHUNK as Transfer-Encoding: chunked in CHUNK-byte
//       chunks. The body goes out with sendfile() from a 64 MiB memfd.
//       Checks status 201 and, when the answer has X-Received, that it equals
//       BYTES.
//   benchc lat PORT PATH CONNS RATE SECONDS
//       Open-loop latency: RATE requests/s for SECONDS over CONNS keep-alive
//       connections, from one epoll thread. Request k is due at start + k/RATE
//       and goes out on the first idle connection; latency runs from the due
//       time (a stall is not hidden by the client waiting) to the last byte
//       of the response.
// Output is one line of key=value pairs. Exit status 1 on any error.
// Connects to 127.0.0.1 only. Every loop is bounded in time or count.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_io.h"

#define IO_TIMEOUT_S 60

static int port;
static const char* path;
static int copy_mode;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int connect_local(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval timeout = {IO_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A response head read from fd into buf; leftover body bytes stay in buf.
typedef struct {
  char buf[16384];
  size_t length;      // bytes in buf
  size_t head_length; // head bytes including the blank line
  int status;
  int64_t content_length;
  int64_t received;   // X-Received, or -1
} response_t;

static int read_head(int fd, response_t* r) {
  r->length = 0;
  r->head_length = 0;
  r->status = 0;
  r->content_length = -1;
  r->received = -1;
  for (int rounds = 0; rounds < 10000; ++rounds) {
    if (r->length >= sizeof r->buf - 1) return 0;
    ssize_t n = recv(fd, r->buf + r->length, sizeof r->buf - 1 - r->length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    r->length += (size_t)n;
    r->buf[r->length] = 0;
    char* end = strstr(r->buf, "\r\n\r\n");
    if (!end) continue;
    r->head_length = (size_t)(end - r->buf) + 4;
    if (sscanf(r->buf, "HTTP/1.%*d %d", &r->status) != 1) return 0;
    // Header scan (case-insensitive names).
    char* line = strstr(r->buf, "\r\n");
    while (line && line < end) {
      line += 2;
      if (!strncasecmp(line, "Content-Length:", 15)) r->content_length = strtoll(line + 15, NULL, 10);
      if (!strncasecmp(line, "X-Received:", 11)) r->received = strtoll(line + 11, NULL, 10);
      line = strstr(line, "\r\n");
    }
    return 1;
  }
  return 0;
}

// Reads and discards the rest of a Content-Length body; returns bytes of
// body seen (including those already in r->buf).
static int64_t drain_body(int fd, response_t* r, int64_t length) {
  int64_t have = (int64_t)(r->length - r->head_length);
  if (have > length) have = length;
  int64_t left = length - have;
  static __thread char* sink;
  if (!sink) sink = malloc(256 * 1024);
  while (left > 0) {
    size_t want = copy_mode ? 256 * 1024 : (16u << 20);
    if ((int64_t)want > left) want = (size_t)left;
    ssize_t n = recv(fd, sink, want, copy_mode ? 0 : MSG_TRUNC);
    if (n > 0) {
      left -= n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  return length - left;
}

typedef struct {
  pthread_t thread;
  int index;
  // get / put
  uint64_t bytes_wanted;
  uint64_t chunk;
  uint64_t bytes_done;
  int ok;
  char error[160];
  double finished;
} job_t;

static pthread_barrier_t barrier;
static double t_start;

static void* get_job(void* arg) {
  job_t* job = arg;
  pthread_barrier_wait(&barrier);
  int fd = connect_local();
  if (fd < 0) {
    snprintf(job->error, sizeof job->error, "connect: %s", strerror(errno));
    return NULL;
  }
  char request[1024];
  int n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: benchc\r\n\r\n", path, port);
  response_t* r = malloc(sizeof *r);
  if (!send_all(fd, request, (size_t)n, 0) || !read_head(fd, r)) {
    snprintf(job->error, sizeof job->error, "no response head: %s", strerror(errno));
  } else if (r->status != 200 || r->content_length < 0) {
    snprintf(job->error, sizeof job->error, "status %d content-length %lld", r->status, (long long)r->content_length);
  } else {
    int64_t got = drain_body(fd, r, r->content_length);
    job->bytes_done = (uint64_t)got;
    if (got != r->content_length)
      snprintf(job->error, sizeof job->error, "short body: %lld of %lld (%s)", (long long)got, (long long)r->content_length, strerror(errno));
    else
      job->ok = 1;
  }
  job->finished = now_s();
  free(r);
  close(fd);
  return NULL;
}

static void* put_job(void* arg) {
  job_t* job = arg;
  pthread_barrier_wait(&barrier);
  int fd = connect_local();
  if (fd < 0) {
    snprintf(job->error, sizeof job->error, "connect: %s", strerror(errno));
    return NULL;
  }
  char request[1024];
  int n;
  if (job->chunk)
    n = snprintf(request, sizeof request,
                 "PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: benchc\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n", path, port);
  else
    n = snprintf(request, sizeof request,
                 "PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: benchc\r\n"
                 "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n",
                 path, port, (unsigned long long)job->bytes_wanted);
  int sent_ok = send_all(fd, request, (size_t)n, MSG_MORE);
  uint64_t left = job->bytes_wanted;
  if (job->chunk) {
    while (sent_ok && left > 0) {
      uint64_t size = left < job->chunk ? left : job->chunk;
      char line[32];
      int m = snprintf(line, sizeof line, "%llx\r\n", (unsigned long long)size);
      sent_ok = send_all(fd, line, (size_t)m, MSG_MORE) && send_source_bytes(fd, size) && send_all(fd, "\r\n", 2, MSG_MORE);
      if (sent_ok) left -= size;
    }
    sent_ok = sent_ok && send_all(fd, "0\r\n\r\n", 5, 0);
  } else {
    sent_ok = sent_ok && send_source_bytes(fd, left);
    if (sent_ok) left = 0;
  }
  job->bytes_done = job->bytes_wanted - left;
  response_t* r = malloc(sizeof *r);
  if (!sent_ok) {
    snprintf(job->error, sizeof job->error, "send failed after %llu bytes: %s", (unsigned long long)job->bytes_done, strerror(errno));
  } else if (!read_head(fd, r)) {
    snprintf(job->error, sizeof job->error, "no response head: %s", strerror(errno));
  } else if (r->status != 201) {
    snprintf(job->error, sizeof job->error, "status %d", r->status);
  } else if (r->received >= 0 && (uint64_t)r->received != job->bytes_wanted) {
    snprintf(job->error, sizeof job->error, "backend received %lld of %llu", (long long)r->received, (unsigned long long)job->bytes_wanted);
  } else {
    job->ok = 1;
  }
  job->finished = now_s();
  free(r);
  close(fd);
  return NULL;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// Open-loop latency from one thread: request k is due at start + k/rate and
// goes out on any idle connection as soon as it is due (or as soon as a
// connection frees up, the wait counting towards its latency). One epoll
// loop with a timerfd keeps the client cheap, like wrk.
typedef struct {
  int fd;
  int busy;
  double scheduled;
  size_t length;       // bytes in buf
  int64_t body_left;   // -1 until the head is parsed
  char buf[4096];
} lconn_t;

static int lat_reconnect(lconn_t* c, int epfd) {
  if (c->fd >= 0) close(c->fd);
  c->fd = connect_local();
  c->busy = 0;
  c->length = 0;
  if (c->fd < 0) return 0;
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0;
}

static int run_latency(int conns, double rate, double seconds) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
  lconn_t* cs = calloc((size_t)conns, sizeof *cs);
  for (int i = 0; i < conns; ++i) {
    cs[i].fd = -1;
    if (!lat_reconnect(&cs[i], epfd)) {
      fprintf(stderr, "benchc: connect: %s\n", strerror(errno));
      return 1;
    }
  }
  char request[512];
  int request_length = snprintf(request, sizeof request,
                                "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: benchc\r\n\r\n", path, port);
  long total = (long)(rate * seconds);
  if (total < 1) total = 1;
  double* lat = malloc(sizeof(double) * (size_t)total);
  long sent = 0, done = 0, errors = 0;
  double start = now_s() + 0.05;
  double deadline = start + seconds + 10.0;
  while (done + errors < total && now_s() < deadline) {
    double now = now_s();
    // Send everything that is due, while connections are free.
    for (int i = 0; i < conns && sent < total; ++i) {
      double due = start + (double)sent / rate;
      if (due > now) break;
      if (cs[i].busy || cs[i].fd < 0) continue;
      if (send(cs[i].fd, request, (size_t)request_length, MSG_NOSIGNAL) != request_length) {
        errors++;
        sent++;
        lat_reconnect(&cs[i], epfd);
        continue;
      }
      cs[i].busy = 1;
      cs[i].scheduled = due;
      cs[i].length = 0;
      cs[i].body_left = -1;
      sent++;
    }
    // Wake for the next due request; if it is already due, every
    // connection is busy and a response will wake us instead.
    struct itimerspec its = {0};
    if (sent < total) {
      double due = start + (double)sent / rate;
      if (due > now_s()) {
        its.it_value.tv_sec = (time_t)due;
        its.it_value.tv_nsec = (long)((due - (double)(time_t)due) * 1e9);
      } else {
        int idle = 0;
        for (int i = 0; i < conns; ++i) idle |= !cs[i].busy && cs[i].fd >= 0;
        if (idle) continue;  // became due meanwhile: send it now
      }
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    struct epoll_event events[64];
    int n = epoll_wait(epfd, events, 64, 100);
    for (int e = 0; e < n; ++e) {
      lconn_t* c = events[e].data.ptr;
      if (!c) {
        uint64_t expirations;
        if (read(tfd, &expirations, sizeof expirations) < 0) { /* spurious */ }
        continue;
      }
      ssize_t got = recv(c->fd, c->buf + c->length, sizeof c->buf - 1 - c->length, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0 || !c->busy) {
        if (c->busy) errors++;
        lat_reconnect(c, epfd);
        continue;
      }
      c->length += (size_t)got;
      c->buf[c->length] = 0;
      if (c->body_left < 0) {
        char* end = strstr(c->buf, "\r\n\r\n");
        if (!end) {
          if (c->length >= sizeof c->buf - 1) {
            errors++;
            lat_reconnect(c, epfd);
          }
          continue;
        }
        int status = 0;
        int64_t content_length = -1;
        sscanf(c->buf, "HTTP/1.%*d %d", &status);
        char* h = strcasestr(c->buf, "\r\nContent-Length:");
        if (h && h < end) content_length = strtoll(h + 17, NULL, 10);
        if (status != 200 || content_length < 0) {
          errors++;
          lat_reconnect(c, epfd);
          continue;
        }
        size_t head = (size_t)(end - c->buf) + 4;
        c->body_left = content_length - (int64_t)(c->length - head);
      } else {
        c->body_left -= got;
      }
      if (c->body_left <= 0) {
        lat[done++] = now_s() - c->scheduled;
        c->busy = 0;
        c->length = 0;
      }
    }
  }
  qsort(lat, (size_t)done, sizeof(double), cmp_double);
#define PCT(p) (done ? lat[(long)((double)(done - 1) * (p))] * 1e6 : 0.0)
  printf("requests=%ld errors=%ld rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n", done,
         errors, done / seconds, PCT(0.50), PCT(0.90), PCT(0.99), PCT(0.999), PCT(1.0));
  return (errors || done < total) ? 1 : 0;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 5) {
    fprintf(stderr,
            "usage: benchc get PORT PATH CONNS\n"
            "       benchc put PORT PATH BYTES CONNS [CHUNK]\n"
            "       benchc lat PORT PATH CONNS RATE SECONDS\n");
    return 2;
  }
  const char* mode = argv[1];
  port = atoi(argv[2]);
  path = argv[3];
  copy_mode = getenv("BENCH_CLIENT_COPY") && atoi(getenv("BENCH_CLIENT_COPY")) == 1;
  int conns;
  uint64_t bytes = 0, chunk = 0;
  double rate = 0, seconds = 0;
  void* (*body)(void*);
  if (!strcmp(mode, "get")) {
    conns = atoi(argv[4]);
    body = get_job;
  } else if (!strcmp(mode, "put") && argc >= 6) {
    bytes = strtoull(argv[4], NULL, 10);
    conns = atoi(argv[5]);
    if (argc > 6) chunk = strtoull(argv[6], NULL, 10);
    body = put_job;
    if (!make_source("benchc-body", 'A')) return 1;
  } else if (!strcmp(mode, "lat") && argc >= 7) {
    conns = atoi(argv[4]);
    rate = atof(argv[5]);
    seconds = atof(argv[6]);
    if (conns < 1 || conns > 1024 || rate <= 0 || seconds <= 0) {
      fprintf(stderr, "benchc: bad lat arguments\n");
      return 2;
    }
    return run_latency(conns, rate, seconds);
  } else {
    fprintf(stderr, "benchc: bad arguments\n");
    return 2;
  }
  if (conns < 1 || conns > 1024) {
    fprintf(stderr, "benchc: CONNS must be 1..1024\n");
    return 2;
  }
  job_t* jobs = calloc((size_t)conns, sizeof *jobs);
  pthread_barrier_init(&barrier, NULL, (unsigned)conns + 1);
  for (int i = 0; i < conns; ++i) {
    jobs[i].index = i;
    jobs[i].bytes_wanted = bytes;
    jobs[i].chunk = chunk;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&jobs[i].thread, &attr, body, &jobs[i]) != 0) {
      fprintf(stderr, "benchc: pthread_create failed\n");
      return 1;
    }
  }
  pthread_barrier_wait(&barrier);
  t_start = now_s();
  for (int i = 0; i < conns; ++i) pthread_join(jobs[i].thread, NULL);
  double t_end = now_s();

  int failed = 0;
  for (int i = 0; i < conns; ++i) {
    if (!jobs[i].ok) {
      if (failed < 5) fprintf(stderr, "benchc: connection %d: %s\n", i, jobs[i].error[0] ? jobs[i].error : "failed");
      failed++;
    }
  }
  uint64_t done = 0;
  for (int i = 0; i < conns; ++i) done += jobs[i].bytes_done;
  double elapsed = t_end - t_start;
  printf("bytes=%llu seconds=%.4f gbps=%.3f failed=%d\n", (unsigned long long)done, elapsed,
         (double)done / elapsed / 1e9, failed);
  return failed ? 1 : 0;
}
