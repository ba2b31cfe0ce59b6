/*
 * loadgen: a verifying epoll load generator for the echo and daytime benchmarks. Loopback only.
 *
 * usage: loadgen MODE [-a HOST] [-p PORT] [-c CONNS] [-s SIZE] [-d SECONDS] [-w WARMUP] [-t THREADS]
 *                     [-k INFLIGHT] [-b NSRC] [-L LOSS_MS] [-H HOLD_SECONDS] [-n MAX_NEW] [-I ID_BASE] [-X SPIN_NS]
 *                     [-F] [-P] [-r RATE]
 * MODE:
 *   tcp-pingpong  CONNS connections; each sends a SIZE-byte message, waits for the whole echo, verifies it, repeats
 *   tcp-stream    CONNS connections each writing SIZE-byte chunks continuously while reading and verifying the echo
 *   tcp-churn     CONNS slots; each connects, sends 64 B, reads the echo, verifies, closes (-F: half-closes after
 *                 sending and reads the echo to EOF, which checks the server finishes what it owes)
 *   udp-pingpong  CONNS sockets with INFLIGHT datagrams each; a datagram unanswered after LOSS_MS is counted lost
 *   daytime       CONNS slots; each connects, reads to EOF, checks the answer looks like a date line
 *   idle          opens CONNS connections that each echo 64 B once, prints its JSON line, then holds them until
 *                 stdin closes or HOLD_SECONDS pass (the runner measures the server's RSS meanwhile)
 * -P (TCP echo modes) starts every connection with a PROXY protocol v2 header carrying its own addresses, as
 *    HAProxy's send-proxy-v2 does, before any message: for an echo server's PROXY listener. Not echoed back.
 * -b NSRC binds connections to source addresses 127.0.0.2 .. 127.0.0.(1+NSRC): each source address has its own
 *    ephemeral port range, and the machine's other users of 127.0.0.1's range are left alone (docs/measurements.md §8).
 *
 * -r RATE (tcp-churn, daytime, tcp-pingpong) paces open loop at RATE per second (all threads together). Churn and
 *    daytime pace new connections, ping-pong pace messages: message k is due at k / RATE and goes out on a
 *    connection whose last echo is back (the CONNS connections are the slots). Churn and daytime in detail:
 *    connection k is due at k / RATE after the start, whatever the server's answers do, and starts then if one of
 *    the CONNS slots is free, else as soon as one frees (the schedule is not reset: a server that falls behind
 *    shows as a rate below RATE). Without -r each slot reconnects as soon as its answer is in (closed loop), which
 *    measures the fastest rate, and then the generator itself may be the limit. With -r every server is measured
 *    at the same rate, below what the generator sustains, so server CPU per connection compares like with like.
 *    The result says "offered_per_s"; a rate below it means the pair did not hold it.
 * -I ID_BASE numbers this process's connections from ID_BASE: several generator processes sharing one load
 *    (the runner's --generators) then never send the same bytes on two connections.
 * -X SPIN_NS busy-waits SPIN_NS after every answer: a deliberately slow generator, for the harness's own test
 *    that a saturated generator is detected. Never set in a measurement.
 *
 * Cost per message, so that the generator is cheaper than the servers it measures: one write and one read per
 *    ping-pong message (plus a share of one epoll_wait, level-triggered, up to 256 events); churn opens a
 *    connection with socket, setsockopt (SO_LINGER; IP_BIND_ADDRESS_NO_PORT and bind with -b), connect and writes
 *    at once, without waiting for an EPOLLOUT (loopback completes the handshake inside connect), then one epoll_ctl,
 *    one read and close: 9 system calls with -b, where waiting for the connect took 12.
 *
 * Connection budget: every TCP socket closes with a reset (SO_LINGER 0) unless -F, and churn and daytime open at
 *    most MAX_NEW connections in the measured window (-n; it then ends when the budget does; the warmup's are
 *    bounded by its length). A FIN close leaves a
 *    TIME_WAIT entry in the netfilter connection table for 120 s; at tens of thousands of connections per second
 *    that fills the table (262,144 here) and the kernel drops new connections machine-wide. A reset leaves 10 s.
 *
 * Every byte is checked: message n of connection i is the slice of one fixed pseudo-random pattern starting at
 * (seed(i) + n * STEP) mod PERIOD, so a byte from another message or another connection does not match.
 * Prints one JSON line to stdout, with the sparse latency histogram ("hist": [bucket, count] pairs) and the
 * generator's own load over the measured window: wait_s, the time its threads spent in epoll_wait, that is waiting
 * for the server (a generator that hardly waits is the limit, whether its own CPU or other processes on its cores
 * hold it back); window_cpu_s (its utime+stime); and for the cores it may run on (cpuset_cores) their idle and
 * softirq seconds, from /proc/stat. Exit code: 1 if any verify failure, 2 on a usage error, otherwise 0.
 * Stalls: when the duration ends no new message is started; whatever is still owed 1 s later is "stalled".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAT_PERIOD 65521u          /* prime: no chunk size lines up with it */
#define PAT_STEP 4099u             /* offset advance per message, coprime with the period */
#define MAX_CHUNK (1u << 20)       /* longest slice compared in one go */
#define MAX_CONNECTING 256         /* connects in progress at once during setup */
#define STALL_NS 1000000000ull     /* an echo owed longer than this at the end is a stall */
#define SETUP_NS 30000000000ull    /* give up opening connections after 30 s */
#define UDP_HDR 16                 /* slot (4) + socket id (4) + sequence number (8) */
#define UDP_BATCH 64
#define HBUCKETS 1920              /* log-linear latency histogram: 32 buckets per power of two, ~3% */

enum mode { M_PINGPONG, M_STREAM, M_CHURN, M_UDP, M_DAYTIME, M_IDLE };
static const char *mode_names[] = {"tcp-pingpong", "tcp-stream", "tcp-churn", "udp-pingpong", "daytime", "idle"};

static struct {
  enum mode mode;
  const char *host;
  int port, conns, size, threads, inflight, nsrc, loss_ms, fin, proxy;
  long max_new, spin_ns, id_base;
  double duration, warmup, hold, rate;
} O = {.host = "127.0.0.1", .port = 7, .conns = 1, .size = 64, .threads = 1, .inflight = 1, .loss_ms = 200,
       .duration = 5, .warmup = 1, .hold = 60};

static unsigned char *pat;         /* PAT_PERIOD + MAX_CHUNK bytes, pat[i] == pat[i % PAT_PERIOD] */
static struct sockaddr_in server;
static uint64_t t_measure, t_end;  /* set by main between the two barriers */
static long new_conns;             /* churn/daytime connections opened so far, all threads (atomic) */
static uint64_t t_budget_out;      /* when the -n budget ran out (atomic), 0 if it did not */
static pthread_barrier_t barrier;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram: bounded memory whatever the run length ---- */
struct hist { uint64_t n[HBUCKETS]; uint64_t count, max; };

static int hbucket(uint64_t v) {
  if (v < 32) return (int)v;
  int shift = 63 - __builtin_clzll(v) - 5;
  return (shift + 1) * 32 + (int)((v >> shift) & 31);
}
static double hbucket_mid(int i) {
  if (i < 32) return i;
  int shift = i / 32 - 1;
  return (double)((uint64_t)(32 + i % 32) << shift) + (double)(1ull << shift) / 2;
}
static void hist_add(struct hist *h, uint64_t v) {
  h->n[hbucket(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}
static double hist_pct(const struct hist *h, double p) {
  uint64_t want = (uint64_t)(p * (double)h->count), seen = 0;
  if (want >= h->count) want = h->count - 1;
  for (int i = 0; i < HBUCKETS; i++) {
    seen += h->n[i];
    if (seen > want) return hbucket_mid(i);
  }
  return (double)h->max;
}

/* ---- per-thread state ---- */
struct stats {
  uint64_t msgs, bytes, total_msgs, errors, verify_failures, stalled, lost, late, opened, setup_failed;
  struct hist h;
};

enum cstate { C_FREE, C_CONNECTING, C_READY, C_ACTIVE, C_DONE };

struct conn {
  int fd;
  uint32_t id;
  enum cstate state;
  int bad;                 /* this message already counted as a verify failure */
  uint32_t want;           /* current epoll event mask */
  uint64_t seed, msgno, sent, rcvd, t0;
  unsigned char *dbuf;     /* daytime: the answer so far */
  uint64_t *udp_seq, *udp_t0; /* udp: per in-flight slot; t0 == 0 means nothing owed */
  unsigned char *udp_tx;
};

struct thread {
  int idx, ep, nconns, connecting, next_src;
  struct conn *conns;
  uint64_t now;
  uint64_t wait_ns;
  int tid_os;        /* time spent in epoll_wait: waiting for the server (atomic: main samples it) */
  /* -r: when the next connection is due, the interval between two (this thread's share of RATE), and the slots
     free for one (a stack of indexes into conns) */
  uint64_t next_due, interval_ns;
  int *free_slots, nfree;
  struct stats st;
  unsigned char *rbuf;
  pthread_t tid;
};

/* CPU the generator used and what its cores did, at one instant: the saturation figures are the difference
   between the start and the end of the measured window. */
struct cpu_sample { double self_s, idle_s, softirq_s, wait_s, run_s, runq_s; int cores; };
static struct thread *threads_all;

static double rusage_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* The cores this process may run on (taskset) and their idle and softirq time from /proc/stat (proc(5)), and each
   thread's time on a core and time runnable but waiting for one (schedstat). On loopback the receive side of every
   segment the generator writes runs as softirq on its core; that time is inside the thread's schedstat run time
   here, and /proc/stat counts it as softirq too: the runner does not add the two. */
static struct cpu_sample cpu_sample(void) {
  struct cpu_sample s = {.self_s = rusage_s()};
  for (int t = 0; t < O.threads; t++) {
    s.wait_s += (double)__atomic_load_n(&threads_all[t].wait_ns, __ATOMIC_RELAXED) / 1e9;
    /* schedstat (Documentation/scheduler/sched-stats.rst): time on the CPU, time runnable but waiting for it */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", __atomic_load_n(&threads_all[t].tid_os, __ATOMIC_RELAXED));
    FILE *f = fopen(path, "r");
    unsigned long long run = 0, runq = 0;
    if (f) {
      if (fscanf(f, "%llu %llu", &run, &runq) != 2) run = runq = 0;
      fclose(f);
    }
    s.run_s += (double)run / 1e9;
    s.runq_s += (double)runq / 1e9;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) return s;
  s.cores = CPU_COUNT(&set);
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return s;
  double tick = (double)sysconf(_SC_CLK_TCK);
  char line[512];
  while (fgets(line, sizeof line, f)) {
    int cpu;
    unsigned long long user, nice, sys, idle, iowait, irq, softirq;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice, &sys, &idle, &iowait, &irq,
               &softirq) != 8 || cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set))
      continue;
    s.idle_s += (double)(idle + iowait) / tick;
    s.softirq_s += (double)softirq / tick;
  }
  fclose(f);
  return s;
}

static const unsigned char *msg_at(uint64_t pos) { return pat + pos % PAT_PERIOD; }
static int running(struct thread *th) { return th->now < t_end; }
static int in_window(struct thread *th) { return th->now >= t_measure && th->now < t_end; }

static void watch(struct thread *th, struct conn *c, uint32_t events) {
  if (c->want == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(th->ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->want = events;
}

static void conn_close(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = C_FREE;
}

static void verify_failed(struct thread *th, struct conn *c) {
  if (!c->bad) th->st.verify_failures++;
  c->bad = 1;
}

static void completed(struct thread *th, struct conn *c, uint64_t bytes) {
  th->st.total_msgs++;
  if (O.spin_ns) { /* -X: a deliberately slow generator, for the harness's own saturation test */
    uint64_t until = now_ns() + (uint64_t)O.spin_ns;
    while (now_ns() < until) {}
  }
  if (!in_window(th)) return;
  th->st.msgs++;
  th->st.bytes += bytes;
  hist_add(&th->st.h, th->now - c->t0);
}

static int send_proxy_header(int fd);

/* Churn and daytime skip waiting for the connect: on loopback the handshake has usually completed by the time
   connect() returns EINPROGRESS (the SYN-ACK is processed before the call returns), so churn's one write goes
   out at once, and daytime only has to wait for the answer. That saves an EPOLLOUT wake-up, a getsockopt
   (SO_ERROR) and an EPOLL_CTL_MOD per connection: the generator must cost less per connection than the server
   it measures. Returns 1 when the connection now waits for its answer, 0 to wait for the connect (EAGAIN: the
   handshake is not done yet), -1 when the write failed (refused, reset). A refused daytime connect shows up
   as an error on the read. */
static int short_open(struct thread *th, struct conn *c) {
  if (O.mode != M_CHURN && O.mode != M_DAYTIME) return 0;
  if (O.mode == M_CHURN) {
    if (O.proxy && send_proxy_header(c->fd) < 0) return 0; /* not connected yet: the slow path sends it */
    ssize_t n = write(c->fd, msg_at(c->seed + c->msgno * PAT_STEP), 64);
    if (n < 0 && (errno == EAGAIN || errno == ENOTCONN) && !O.proxy) return 0;
    if (n != 64 || (O.fin && shutdown(c->fd, SHUT_WR) < 0)) return -1; /* refused or reset: tcp_open fails */
  }
  th->st.opened++;
  c->state = C_ACTIVE;
  c->want = EPOLLIN;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev);
  return 1;
}

/* Nonblocking connect, optionally from 127.0.0.(2+k). Completion is reported as EPOLLOUT. */
static int tcp_open(struct thread *th, struct conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  /* Nagle only holds back data sent while earlier data is unacknowledged: churn writes once, daytime never. */
  if (O.mode != M_CHURN && O.mode != M_DAYTIME) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!O.fin) {
    struct linger rst = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
  }
  if (O.nsrc > 0) {
    /* Defer the port choice to connect(): the port then only has to be unique per 4-tuple. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(th->next_src++ % O.nsrc));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { close(fd); return -1; }
  }
  if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  c->fd = fd;
  c->t0 = th->now;
  c->sent = c->rcvd = 0;
  c->bad = 0;
  int now = short_open(th, c);
  if (now < 0) { conn_close(c); return -1; }
  if (now > 0) return 0;
  c->state = C_CONNECTING;
  c->want = EPOLLOUT;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(th->ep, EPOLL_CTL_ADD, fd, &ev);
  th->connecting++;
  return 0;
}

/* ---- tcp-pingpong (and the one message of idle) ---- */
static void pp_write(struct thread *th, struct conn *c) {
  const unsigned char *m = msg_at(c->seed + c->msgno * PAT_STEP);
  while (c->sent < (uint64_t)O.size) {
    ssize_t n = write(c->fd, m + c->sent, O.size - c->sent);
    if (n < 0) {
      if (errno == EAGAIN) { watch(th, c, EPOLLIN | EPOLLOUT); return; }
      th->st.errors++;
      conn_close(c);
      return;
    }
    c->sent += (uint64_t)n;
  }
  watch(th, c, EPOLLIN);
}

static void pp_start(struct thread *th, struct conn *c) {
  c->state = C_ACTIVE;
  c->sent = c->rcvd = 0;
  c->bad = 0;
  c->t0 = th->now;
  pp_write(th, c);
}

/* One read per event: epoll is level-triggered, so bytes still queued are reported again by the next epoll_wait,
   which is batched over every connection. Reading until EAGAIN cost a second read() per message that found
   nothing (an echo cannot arrive before the next message is sent): 1.5 reads per message instead of 1. */
static void pp_read(struct thread *th, struct conn *c) {
  uint64_t want = c->state == C_ACTIVE ? O.size - c->rcvd : MAX_CHUNK;
  ssize_t n = read(c->fd, th->rbuf, want);
  if (n < 0) {
    if (errno == EAGAIN) return;
    th->st.errors++;
    conn_close(c);
    return;
  }
  if (n == 0) { th->st.errors++; conn_close(c); return; } /* EOF with an echo owed or unasked */
  if (c->state != C_ACTIVE) { verify_failed(th, c); return; } /* bytes nobody sent */
  if (memcmp(th->rbuf, msg_at(c->seed + c->msgno * PAT_STEP) + c->rcvd, (size_t)n) != 0) verify_failed(th, c);
  c->rcvd += (uint64_t)n;
  if (c->rcvd < (uint64_t)O.size) return;
  completed(th, c, (uint64_t)O.size);
  c->msgno++;
  if (O.mode == M_IDLE || !running(th)) { c->state = C_DONE; return; }
  if (O.rate > 0) { /* -r: the connection waits for the schedule (pace) */
    c->state = C_READY;
    th->free_slots[th->nfree++] = (int)(c - th->conns);
    return;
  }
  pp_start(th, c);
}

/* ---- tcp-stream ---- */
static uint64_t stream_cap(void) {
  uint64_t cap = 16ull * (uint64_t)O.size;
  return cap < MAX_CHUNK ? MAX_CHUNK : cap;  /* bound on bytes owed per connection */
}

static void stream_write(struct thread *th, struct conn *c) {
  while (running(th) && c->sent - c->rcvd < stream_cap()) {
    uint64_t len = stream_cap() - (c->sent - c->rcvd);
    if (len > (uint64_t)O.size) len = (uint64_t)O.size;
    ssize_t n = write(c->fd, msg_at(c->seed + c->sent), len);
    if (n < 0) {
      if (errno == EAGAIN) { watch(th, c, EPOLLIN | EPOLLOUT); return; }
      th->st.errors++;
      conn_close(c);
      return;
    }
    c->sent += (uint64_t)n;
  }
  watch(th, c, EPOLLIN);
}

static void stream_read(struct thread *th, struct conn *c) {
  for (int i = 0; i < 16; i++) {
    ssize_t n = read(c->fd, th->rbuf, MAX_CHUNK);
    if (n < 0) {
      if (errno == EAGAIN) break;
      th->st.errors++;
      conn_close(c);
      return;
    }
    if (n == 0) { th->st.errors++; conn_close(c); return; }
    if (c->rcvd + (uint64_t)n > c->sent || memcmp(th->rbuf, msg_at(c->seed + c->rcvd), (size_t)n) != 0) {
      verify_failed(th, c);
      c->bad = 0; /* count every bad read, the stream has no messages */
    }
    c->rcvd += (uint64_t)n;
    if (in_window(th)) th->st.bytes += (uint64_t)n;
  }
  stream_write(th, c);
}

/* ---- tcp-churn and daytime: one short connection per slot at a time ---- */
/* May one more short connection start now? Stop reconnecting when the server is gone (errors are bounded, not a
   hot loop) or the budget is spent. The budget counts the measured window's connections: those of the warmup are
   bounded by its length, and counting them let a fast server spend the whole budget before the window opened (a
   rate of 0). */
static int may_open(struct thread *th) {
  if (!running(th) || th->st.errors > 1000) return 0;
  if (O.max_new > 0 && th->now >= t_measure && __atomic_add_fetch(&new_conns, 1, __ATOMIC_RELAXED) > O.max_new) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&t_budget_out, &zero, th->now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return 0;
  }
  return 1;
}

static void slot_restart(struct thread *th, struct conn *c) {
  conn_close(c);
  if (O.rate > 0) { /* -r: the slot waits for the schedule (pace) */
    th->free_slots[th->nfree++] = (int)(c - th->conns);
    return;
  }
  if (may_open(th) && tcp_open(th, c) < 0) th->st.errors++;
}

/* -r: start every connection that is due, one per free slot. A connection that finds no free slot waits for one
   (its due time stays: the schedule is open loop, so a server that cannot keep up shows as a lower rate). */
static void pace(struct thread *th) {
  while (th->nfree > 0 && th->next_due <= th->now) {
    if (O.mode == M_PINGPONG) { /* the next message, on an open connection whose echo is back */
      if (!running(th)) return;
      th->next_due += th->interval_ns;
      pp_start(th, &th->conns[th->free_slots[--th->nfree]]);
      continue;
    }
    if (!may_open(th)) return;
    struct conn *c = &th->conns[th->free_slots[--th->nfree]];
    th->next_due += th->interval_ns;
    if (tcp_open(th, c) < 0) {
      th->st.errors++;
      th->free_slots[th->nfree++] = (int)(c - th->conns);
    }
  }
}

static int looks_like_date(const unsigned char *b, size_t n) {
  if (n < 8 || b[n - 1] != '\n') return 0;
  int year = 0, clock = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = b[i];
    if ((ch < 0x20 || ch > 0x7e) && ch != '\r' && ch != '\n' && ch != '\t') return 0;
    if (i + 4 <= n && ((b[i] == '1' && b[i + 1] == '9') || (b[i] == '2' && b[i + 1] == '0')) &&
        b[i + 2] >= '0' && b[i + 2] <= '9' && b[i + 3] >= '0' && b[i + 3] <= '9')
      year = 1;
    if (i + 3 <= n && b[i] >= '0' && b[i] <= '9' && b[i + 1] == ':' && b[i + 2] >= '0' && b[i + 2] <= '9') clock = 1;
  }
  return year && clock;
}

#define DAYTIME_MAX 256
static void short_read(struct thread *th, struct conn *c) {
  for (;;) {
    unsigned char *dst = O.mode == M_DAYTIME ? c->dbuf + c->rcvd : th->rbuf;
    size_t room = O.mode == M_DAYTIME ? DAYTIME_MAX - c->rcvd : MAX_CHUNK;
    if (room == 0) { verify_failed(th, c); slot_restart(th, c); return; } /* far too long for a date line */
    ssize_t n = read(c->fd, dst, room);
    if (n < 0) {
      if (errno == EAGAIN) return;
      th->st.errors++;
      slot_restart(th, c);
      return;
    }
    if (n == 0) break;
    if (O.mode == M_CHURN && !O.fin && c->rcvd + (uint64_t)n >= 64) { /* the whole echo: no EOF to wait for */
      if (c->rcvd + (uint64_t)n > 64 || memcmp(dst, msg_at(c->seed + c->msgno * PAT_STEP) + c->rcvd, (size_t)n) != 0)
        verify_failed(th, c);
      c->rcvd += (uint64_t)n;
      break;
    }
    if (O.mode == M_CHURN && (c->rcvd + (uint64_t)n > 64 || memcmp(dst, msg_at(c->seed + c->msgno * PAT_STEP) + c->rcvd, (size_t)n) != 0))
      verify_failed(th, c);
    c->rcvd += (uint64_t)n;
  }
  /* EOF (or, for churn without -F, the 64 B echo): the answer is complete. */
  if (O.mode == M_CHURN && c->rcvd != 64) verify_failed(th, c);
  if (O.mode == M_DAYTIME && !looks_like_date(c->dbuf, c->rcvd)) verify_failed(th, c);
  completed(th, c, c->rcvd);
  c->msgno++;
  slot_restart(th, c);
}

static void churn_connected(struct thread *th, struct conn *c) {
  c->state = C_ACTIVE;
  if (O.mode == M_CHURN) {
    /* 64 B fit any socket buffer: one write; with -F the half-close checks the server echoes what it owes first. */
    if (write(c->fd, msg_at(c->seed + c->msgno * PAT_STEP), 64) != 64 || (O.fin && shutdown(c->fd, SHUT_WR) < 0)) {
      th->st.errors++;
      slot_restart(th, c);
      return;
    }
  }
  watch(th, c, EPOLLIN);
}

/* ---- udp-pingpong ---- */
static void udp_fill(struct conn *c, int slot) {
  unsigned char *d = c->udp_tx + (size_t)slot * O.size;
  uint32_t s32 = (uint32_t)slot;
  memcpy(d, &s32, 4);
  memcpy(d + 4, &c->id, 4);
  memcpy(d + 8, &c->udp_seq[slot], 8);
  memcpy(d + UDP_HDR, msg_at(c->seed + c->udp_seq[slot] * PAT_STEP), O.size - UDP_HDR);
}

static void udp_send(struct thread *th, struct conn *c, int slot) {
  c->udp_seq[slot] = c->msgno++;
  c->udp_t0[slot] = th->now;
  udp_fill(c, slot);
  if (send(c->fd, c->udp_tx + (size_t)slot * O.size, O.size, 0) < 0) th->st.errors++; /* a loss, found by timeout */
}

static void udp_read(struct thread *th, struct conn *c) {
  static __thread struct mmsghdr msgs[UDP_BATCH];
  static __thread struct iovec iov[UDP_BATCH];
  for (int i = 0; i < UDP_BATCH; i++) {
    iov[i] = (struct iovec){.iov_base = th->rbuf + (size_t)i * 65536, .iov_len = 65536};
    msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
  }
  int n = recvmmsg(c->fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
  if (n < 0) {
    if (errno != EAGAIN) th->st.errors++; /* ECONNREFUSED: the port was closed for a moment */
    return;
  }
  for (int i = 0; i < n; i++) {
    const unsigned char *d = iov[i].iov_base;
    uint32_t slot, id;
    uint64_t seq;
    if (msgs[i].msg_len != (unsigned)O.size) { th->st.verify_failures++; continue; }
    memcpy(&slot, d, 4);
    memcpy(&id, d + 4, 4);
    memcpy(&seq, d + 8, 8);
    if (id != c->id || slot >= (uint32_t)O.inflight) { th->st.verify_failures++; continue; }
    if (c->udp_t0[slot] == 0 || c->udp_seq[slot] != seq) { th->st.late++; continue; } /* answered after its timeout */
    if (memcmp(d + UDP_HDR, msg_at(c->seed + seq * PAT_STEP), O.size - UDP_HDR) != 0) th->st.verify_failures++;
    c->t0 = c->udp_t0[slot];
    completed(th, c, (uint64_t)O.size);
    c->udp_t0[slot] = 0;
    if (running(th)) udp_send(th, c, (int)slot);
  }
}

static void udp_timeouts(struct thread *th) {
  uint64_t limit = (uint64_t)O.loss_ms * 1000000ull;
  for (int i = 0; i < th->nconns; i++) {
    struct conn *c = &th->conns[i];
    for (int s = 0; s < O.inflight; s++) {
      if (c->udp_t0[s] == 0 || th->now - c->udp_t0[s] < limit) continue;
      th->st.lost++;
      c->udp_t0[s] = 0;
      if (running(th)) udp_send(th, c, s);
    }
  }
}

/* ---- event loop ---- */
/* PROXY protocol v2, PROXY command, TCP over IPv4: the 12-byte signature, version/command, family, length 12,
   then source and destination address and port (HAProxy's proxy-protocol.txt, section 2.2). 28 bytes: a fresh
   connection's send buffer always takes them whole. */
static int send_proxy_header(int fd) {
  struct sockaddr_in src, dst;
  socklen_t len = sizeof src;
  if (getsockname(fd, (struct sockaddr *)&src, &len) < 0) return -1;
  len = sizeof dst;
  if (getpeername(fd, (struct sockaddr *)&dst, &len) < 0) return -1;
  unsigned char h[28] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12};
  memcpy(h + 16, &src.sin_addr, 4);
  memcpy(h + 20, &dst.sin_addr, 4);
  memcpy(h + 24, &src.sin_port, 2);
  memcpy(h + 26, &dst.sin_port, 2);
  return write(fd, h, sizeof h) == (ssize_t)sizeof h ? 0 : -1;
}

static void on_connected(struct thread *th, struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  th->connecting--;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    th->st.errors++;
    if (O.mode == M_CHURN || O.mode == M_DAYTIME) slot_restart(th, c);
    else { conn_close(c); th->st.setup_failed++; }
    return;
  }
  th->st.opened++;
  if (O.proxy && send_proxy_header(c->fd) < 0) {
    th->st.errors++;
    if (O.mode == M_CHURN) slot_restart(th, c);
    else { conn_close(c); th->st.setup_failed++; }
    return;
  }
  switch (O.mode) {
  case M_PINGPONG: case M_STREAM: c->state = C_READY; watch(th, c, EPOLLIN); break;
  case M_IDLE: pp_start(th, c); break;
  default: churn_connected(th, c); break;
  }
}

static void on_event(struct thread *th, struct conn *c, uint32_t events) {
  if (c->fd < 0) return;
  if (c->state == C_CONNECTING) {
    on_connected(th, c);
    if (c->fd < 0 || !(events & EPOLLIN)) return;
  }
  switch (O.mode) {
  case M_PINGPONG: case M_IDLE:
    if ((events & EPOLLOUT) && c->state == C_ACTIVE) pp_write(th, c);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) pp_read(th, c);
    break;
  case M_STREAM:
    if (c->state != C_ACTIVE) { pp_read(th, c); break; } /* data before the start: not ours */
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) stream_read(th, c);
    else stream_write(th, c);
    break;
  case M_CHURN: case M_DAYTIME: short_read(th, c); break;
  case M_UDP: udp_read(th, c); break;
  }
}

static void poll_once(struct thread *th, uint64_t deadline) {
  struct epoll_event evs[256];
  int n;
  uint64_t before = now_ns();
  if (O.rate > 0 && running(th)) {
    /* -r: sleep until the next connection is due at most (to the microsecond: epoll_pwait2(2), timer slack set
       to 1 us in thread_main), or not at all when one is due and a slot is free. */
    uint64_t until = th->nfree > 0 && th->next_due < deadline ? th->next_due : deadline;
    uint64_t wait = until > before ? until - before : 0;
    if (wait > 10000000ull) wait = 10000000ull;
    /* Ping-pong: messages are due every few microseconds; waking for each one cost the generator more than the
       messages did (94 % busy at 50,000/s against C, where closed loop it sustained 85,000/s). Due messages are
       sent together at most every 100 us instead: the schedule is kept (next_due is not reset), so the rate is. */
    if (O.mode == M_PINGPONG && wait < 100000ull) wait = 100000ull;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
    n = epoll_pwait2(th->ep, evs, 256, &ts, NULL);
  } else {
    int timeout = 10;
    if (deadline > th->now && deadline - th->now < 10000000ull) timeout = (int)((deadline - th->now) / 1000000ull) + 1;
    n = epoll_wait(th->ep, evs, 256, timeout);
  }
  th->now = now_ns();
  __atomic_add_fetch(&th->wait_ns, th->now - before, __ATOMIC_RELAXED);
  for (int i = 0; i < n; i++) on_event(th, evs[i].data.ptr, evs[i].events);
  if (O.mode == M_UDP) udp_timeouts(th);
  if (O.rate > 0) pace(th);
}

/* What is still owed: messages without their whole echo, open short connections, datagrams in flight. */
static uint64_t owed(struct thread *th) {
  uint64_t n = 0;
  for (int i = 0; i < th->nconns; i++) {
    struct conn *c = &th->conns[i];
    if (O.mode == M_UDP) {
      for (int s = 0; s < O.inflight; s++) n += c->udp_t0[s] != 0;
    } else if (c->fd >= 0) {
      if (O.mode == M_PINGPONG || O.mode == M_IDLE) n += c->state == C_ACTIVE;
      else if (O.mode == M_STREAM) n += c->state == C_ACTIVE && c->rcvd < c->sent;
      else n += 1;
    }
  }
  return n;
}

/* Open the persistent connections (pingpong, stream, idle), at most MAX_CONNECTING at once. */
static void setup(struct thread *th) {
  uint64_t deadline = now_ns() + SETUP_NS;
  int next = 0;
  th->now = now_ns();
  while (th->now < deadline) {
    /* Idle: a connection counts as in flight until its echo is back, not only until connect() completes, so the
       server's accept queue (Node's default backlog is 511) never overflows into 1 s SYN retransmits. */
    uint64_t in_flight = (uint64_t)th->connecting + (O.mode == M_IDLE ? owed(th) : 0);
    for (; in_flight < MAX_CONNECTING && next < th->nconns; in_flight++) {
      if (tcp_open(th, &th->conns[next++]) < 0) { th->st.errors++; th->st.setup_failed++; }
    }
    if (next == th->nconns && th->connecting == 0 && (O.mode != M_IDLE || owed(th) == 0)) return;
    poll_once(th, deadline);
  }
  th->st.setup_failed += (uint64_t)(th->nconns - next) + (uint64_t)th->connecting;
}

static void start(struct thread *th) {
  for (int i = 0; i < th->nconns; i++) {
    struct conn *c = &th->conns[i];
    switch (O.mode) {
    case M_PINGPONG:
      if (c->state != C_READY) break;
      if (O.rate > 0) th->free_slots[th->nfree++] = i; /* -r: every open connection is a free slot */
      else pp_start(th, c);
      break;
    case M_STREAM: if (c->state == C_READY) { c->state = C_ACTIVE; stream_write(th, c); } break;
    case M_CHURN: case M_DAYTIME: c->fd = -1; slot_restart(th, c); break; /* -r: frees the slot for pace() */
    case M_UDP: for (int s = 0; s < O.inflight; s++) udp_send(th, c, s); break;
    case M_IDLE: break;
    }
  }
}

static void *thread_main(void *arg) {
  struct thread *th = arg;
  __atomic_store_n(&th->tid_os, gettid(), __ATOMIC_RELAXED);
  if (O.mode == M_UDP) {
    for (int i = 0; i < th->nconns; i++) {
      struct conn *c = &th->conns[i];
      c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0) {
        th->st.setup_failed++;
        continue;
      }
      c->want = EPOLLIN;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
      epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev);
      th->st.opened++;
    }
  } else if (O.mode != M_CHURN && O.mode != M_DAYTIME) {
    setup(th);
  }
  pthread_barrier_wait(&barrier);  /* every connection is open */
  pthread_barrier_wait(&barrier);  /* main has set t_measure and t_end */
  th->now = now_ns();
  if (O.rate > 0) {
    prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: the default 50 us would bunch paced connections together */
    th->interval_ns = (uint64_t)(1e9 * O.threads / O.rate);
    th->next_due = th->now;
  }
  start(th);
  if (O.rate > 0) pace(th);
  while (th->now < t_end) poll_once(th, t_end);
  pthread_barrier_wait(&barrier);  /* main has read this thread's schedstat: it must not exit before */
  /* Drain: start nothing new, give what is owed 1 s, then what is left has stalled. */
  while (owed(th) > 0 && th->now < t_end + STALL_NS) poll_once(th, t_end + STALL_NS);
  if (O.mode == M_UDP) th->st.lost += owed(th);
  else th->st.stalled = owed(th);
  return NULL;
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen tcp-pingpong|tcp-stream|tcp-churn|udp-pingpong|daytime|idle [-a HOST] [-p PORT]\n"
                  "       [-c CONNS] [-s SIZE] [-d SECONDS] [-w WARMUP] [-t THREADS] [-k INFLIGHT] [-b NSRC]\n"
                  "       [-L LOSS_MS] [-H HOLD_SECONDS] [-n MAX_NEW] [-X SPIN_NS] [-I ID_BASE] [-F] [-P] [-r RATE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  int m = -1;
  for (int i = 0; i < 6; i++) if (strcmp(argv[1], mode_names[i]) == 0) m = i;
  if (m < 0) usage();
  O.mode = (enum mode)m;
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "a:p:c:s:d:w:t:k:b:L:H:n:X:I:r:FP")) != -1) {
    switch (opt) {
    case 'a': O.host = optarg; break;
    case 'p': O.port = atoi(optarg); break;
    case 'c': O.conns = atoi(optarg); break;
    case 's': O.size = atoi(optarg); break;
    case 'd': O.duration = atof(optarg); break;
    case 'w': O.warmup = atof(optarg); break;
    case 't': O.threads = atoi(optarg); break;
    case 'k': O.inflight = atoi(optarg); break;
    case 'b': O.nsrc = atoi(optarg); break;
    case 'L': O.loss_ms = atoi(optarg); break;
    case 'H': O.hold = atof(optarg); break;
    case 'n': O.max_new = atol(optarg); break;
    case 'X': O.spin_ns = atol(optarg); break;
    case 'I': O.id_base = atol(optarg); break;
    case 'F': O.fin = 1; break;
    case 'P': O.proxy = 1; break;
    case 'r': O.rate = atof(optarg); break;
    default: usage();
    }
  }
  if (O.mode == M_CHURN || O.mode == M_IDLE) O.size = 64;
  if (O.mode == M_IDLE) O.threads = 1;
  if (O.conns < 1 || O.threads < 1 || O.size < 1 || (uint32_t)O.size > MAX_CHUNK || O.inflight < 1 ||
      O.duration <= 0 || O.warmup < 0 || O.nsrc < 0 || O.nsrc > 250 || O.loss_ms < 1 ||
      O.spin_ns < 0 || O.spin_ns > 1000000 || O.id_base < 0 ||
      O.id_base > 100000000)
    usage();
  if (O.mode == M_UDP && (O.size < UDP_HDR || O.size > 65507)) usage();
  if (O.proxy && (O.mode == M_UDP || O.mode == M_DAYTIME)) usage();
  if (O.rate < 0 || O.rate > 1e6 || (O.rate > 0 && O.mode != M_CHURN && O.mode != M_DAYTIME && O.mode != M_PINGPONG)) usage();
  if (O.threads > O.conns) O.threads = O.conns;
  server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
  if (inet_pton(AF_INET, O.host, &server.sin_addr) != 1 || (ntohl(server.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "loadgen: HOST must be a 127.x.x.x address\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

  pat = malloc(PAT_PERIOD + MAX_CHUNK);
  uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64: fixed seed, the same pattern every run */
  for (uint32_t i = 0; i < PAT_PERIOD; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    pat[i] = (unsigned char)(x >> 24);
  }
  for (uint32_t i = PAT_PERIOD; i < PAT_PERIOD + MAX_CHUNK; i++) pat[i] = pat[i % PAT_PERIOD];

  struct thread *ths = calloc((size_t)O.threads, sizeof *ths);
  threads_all = ths;
  struct conn *conns = calloc((size_t)O.conns, sizeof *conns);
  for (int i = 0; i < O.conns; i++) {
    struct conn *c = &conns[i];
    c->fd = -1;
    c->id = (uint32_t)(O.id_base + i);
    c->seed = (uint64_t)c->id * 7919u;
    if (O.mode == M_DAYTIME) c->dbuf = malloc(DAYTIME_MAX);
    if (O.mode == M_UDP) {
      c->udp_seq = calloc((size_t)O.inflight, 8);
      c->udp_t0 = calloc((size_t)O.inflight, 8);
      c->udp_tx = malloc((size_t)O.inflight * (size_t)O.size);
    }
  }
  pthread_barrier_init(&barrier, NULL, (unsigned)O.threads + 1);
  uint64_t t_begin = now_ns();
  for (int t = 0; t < O.threads; t++) {
    struct thread *th = &ths[t];
    int lo = (int)((int64_t)O.conns * t / O.threads), hi = (int)((int64_t)O.conns * (t + 1) / O.threads);
    th->idx = t;
    th->conns = conns + lo;
    th->nconns = hi - lo;
    th->next_src = (int)O.id_base + lo;
    th->ep = epoll_create1(EPOLL_CLOEXEC);
    th->rbuf = malloc(O.mode == M_UDP ? (size_t)UDP_BATCH * 65536 : MAX_CHUNK);
    th->free_slots = calloc((size_t)th->nconns, sizeof *th->free_slots);
    if (O.mode == M_IDLE) break;
    pthread_create(&th->tid, NULL, thread_main, th);
  }

  uint64_t setup_ns = 0;
  struct cpu_sample w0 = {0}, w1 = {0};
  double window_s = 0;
  if (O.mode == M_IDLE) {
    /* No timed phase: open, echo once, report, hold until the runner closes stdin. */
    setup(&ths[0]);
    setup_ns = now_ns() - t_begin;
  } else {
    pthread_barrier_wait(&barrier);
    setup_ns = now_ns() - t_begin;
    t_measure = now_ns() + (uint64_t)(O.warmup * 1e9);
    t_end = t_measure + (uint64_t)(O.duration * 1e9);
    pthread_barrier_wait(&barrier);
    /* Sample the generator's CPU over the measured window: from its start to its end, or to when the
       connection budget ran out (the window's end for the rate too). */
    struct timespec tick = {0, 5000000};
    while (now_ns() < t_measure) nanosleep(&tick, NULL);
    w0 = cpu_sample();
    uint64_t tw0 = now_ns();
    while (now_ns() < t_end && !__atomic_load_n(&t_budget_out, __ATOMIC_RELAXED)) nanosleep(&tick, NULL);
    w1 = cpu_sample();
    window_s = (double)(now_ns() - tw0) / 1e9;
    pthread_barrier_wait(&barrier);
    for (int t = 0; t < O.threads; t++) pthread_join(ths[t].tid, NULL);
  }

  struct stats sum = {0};
  for (int t = 0; t < O.threads; t++) {
    struct stats *s = &ths[t].st;
    sum.msgs += s->msgs; sum.bytes += s->bytes; sum.total_msgs += s->total_msgs; sum.errors += s->errors;
    sum.verify_failures += s->verify_failures; sum.stalled += s->stalled; sum.lost += s->lost; sum.late += s->late;
    sum.opened += s->opened; sum.setup_failed += s->setup_failed;
    for (int i = 0; i < HBUCKETS; i++) sum.h.n[i] += s->h.n[i];
    sum.h.count += s->h.count;
    if (s->h.max > sum.h.max) sum.h.max = s->h.max;
  }
  if (O.mode == M_IDLE) sum.stalled = owed(&ths[0]);
  if (O.mode == M_STREAM) {
    /* A stream has no messages: count SIZE-byte chunks echoed, in the window and in all. */
    uint64_t all = 0;
    for (int i = 0; i < O.conns; i++) all += conns[i].rcvd;
    sum.msgs = sum.bytes / (uint64_t)O.size;
    sum.total_msgs = all / (uint64_t)O.size;
  }

  double cpu = rusage_s();
  double secs = O.mode == M_IDLE ? 0 : O.duration;
  if (t_budget_out && t_budget_out < t_end) /* the budget ended the window early */
    secs = t_budget_out > t_measure ? (double)(t_budget_out - t_measure) / 1e9 : 0;
  char lat[160] = "null";
  if (sum.h.count > 0)
    snprintf(lat, sizeof lat, "{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", hist_pct(&sum.h, 0.5) / 1e3,
             hist_pct(&sum.h, 0.99) / 1e3, hist_pct(&sum.h, 0.999) / 1e3, (double)sum.h.max / 1e3);
  /* The histogram itself, sparse ([bucket, count] pairs): the runner merges those of several generator
     processes into one before taking percentiles. */
  size_t hcap = 64 + (size_t)HBUCKETS * 24, hlen = 0;
  char *hist = malloc(hcap);
  hlen += (size_t)snprintf(hist + hlen, hcap - hlen, "[");
  for (int i = 0; i < HBUCKETS; i++)
    if (sum.h.n[i]) hlen += (size_t)snprintf(hist + hlen, hcap - hlen, "%s[%d,%llu]", hlen > 1 ? "," : "", i, (unsigned long long)sum.h.n[i]);
  snprintf(hist + hlen, hcap - hlen, "]");
  printf("{\"mode\":\"%s\",\"port\":%d,\"conns\":%d,\"size\":%d,\"inflight\":%d,\"threads\":%d,\"duration_s\":%g,"
         "\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,\"lat_us\":%s,\"errors\":%llu,\"verify_failures\":%llu,"
         "\"stalled\":%llu,\"lost\":%llu,\"late\":%llu,\"opened\":%llu,\"setup_failed\":%llu,\"total_msgs\":%llu,"
         "\"offered_per_s\":%.1f,\"setup_s\":%.3f,\"loadgen_cpu_s\":%.3f,\"budget_exhausted\":%s,\"window_s\":%.4f,\"window_cpu_s\":%.4f,"
         "\"wait_s\":%.4f,\"run_s\":%.4f,\"runq_s\":%.4f,\"cpuset_cores\":%d,\"cpuset_idle_s\":%.3f,\"cpuset_softirq_s\":%.3f,\"lat_max_ns\":%llu,\"hist\":%s}\n",
         mode_names[O.mode], O.port, O.conns, O.size, O.inflight, O.threads, secs, (unsigned long long)sum.msgs,
         secs > 0 ? (double)sum.msgs / secs : 0, secs > 0 ? (double)sum.bytes / secs / 1e6 : 0, lat,
         (unsigned long long)sum.errors, (unsigned long long)sum.verify_failures, (unsigned long long)sum.stalled,
         (unsigned long long)sum.lost, (unsigned long long)sum.late, (unsigned long long)sum.opened,
         (unsigned long long)sum.setup_failed, (unsigned long long)sum.total_msgs, O.rate, (double)setup_ns / 1e9, cpu,
         t_budget_out ? "true" : "false", window_s, w1.self_s - w0.self_s, w1.wait_s - w0.wait_s, w1.run_s - w0.run_s, w1.runq_s - w0.runq_s, w1.cores, w1.idle_s - w0.idle_s,
         w1.softirq_s - w0.softirq_s, (unsigned long long)sum.h.max, hist);
  fflush(stdout);

  if (O.mode == M_IDLE) {
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    uint64_t until = now_ns() + (uint64_t)(O.hold * 1e9);
    char junk[256];
    while (now_ns() < until) {
      int r = poll(&pfd, 1, 100);
      if (r > 0 && read(0, junk, sizeof junk) <= 0) break; /* stdin closed: the runner is done */
    }
  }
  return sum.verify_failures > 0 ? 1 : 0;
}
