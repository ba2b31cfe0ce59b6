/*
 * echo-tcp-ref: the reference TCP echo server for the benchmarks (RFC 862 semantics).
 * One thread, one epoll set, level-triggered. Each connection owns one buffer: a connection is either
 * reading (buffer empty) or writing what it owes (EPOLLOUT, no EPOLLIN), so a peer that sends and never
 * reads costs one buffer, not unbounded memory. TCP_NODELAY on every accepted socket: without it Nagle
 * and delayed ACK cap ping-pong at ~25 messages/s (docs/measurements.md §6).
 *
 * usage: echo-tcp-ref PORT [HOST]     (HOST defaults to 127.0.0.1). Prints nothing but errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* malloc'd per connection; pages a connection never fills are never touched, so an idle connection
   that echoed 64 B costs about one page of RSS. */
#define BUF_SIZE (64 * 1024)

struct conn {
  int fd;
  size_t off, len;  /* bytes [off, len) of buf are still owed to the peer */
  int peer_eof;     /* peer half-closed: finish echoing, then shut down */
  char buf[BUF_SIZE];
};

static int ep;

static void conn_close(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c);
}

static void conn_watch(struct conn *c, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) perror("epoll_ctl MOD");
}

/* Write what is owed. Returns 1 when the buffer is empty, 0 when the socket is full, -1 on error. */
static int conn_flush(struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->off += (size_t)n;
  }
  c->off = c->len = 0;
  return 1;
}

static void conn_event(struct conn *c, uint32_t events) {
  if (events & EPOLLOUT) {
    int r = conn_flush(c);
    if (r < 0) { conn_close(c); return; }
    if (r == 0) return;            /* still owed: keep waiting for EPOLLOUT */
    if (c->peer_eof) goto finish;
    conn_watch(c, EPOLLIN);        /* buffer empty: read again */
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  /* Bounded loop: one connection must not starve the others. */
  for (int i = 0; i < 16; i++) {
    ssize_t n = read(c->fd, c->buf, BUF_SIZE);
    if (n == 0) { c->peer_eof = 1; goto finish; }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      conn_close(c);               /* ECONNRESET and friends */
      return;
    }
    c->len = (size_t)n;
    int r = conn_flush(c);
    if (r < 0) { conn_close(c); return; }
    if (r == 0) { conn_watch(c, EPOLLOUT); return; }  /* full: stop reading until the peer drains */
  }
  return;
finish:
  if (c->off < c->len) { conn_watch(c, EPOLLOUT); return; }  /* echo what is owed first */
  shutdown(c->fd, SHUT_WR);
  conn_close(c);
}

static void accept_all(int lfd, int *spare_fd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if ((errno == EMFILE || errno == ENFILE) && *spare_fd >= 0) {
        /* Out of descriptors: the listen socket stays readable and would spin. Free the spare, accept and
           close the connection so the client sees it refused, keep the spare for next time. */
        fprintf(stderr, "echo-tcp-ref: accept: %s (shedding)\n", strerror(errno));
        close(*spare_fd);
        int victim = accept(lfd, NULL, NULL);
        if (victim >= 0) close(victim);
        *spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        continue;
      }
      perror("accept4");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = malloc(sizeof *c);
    if (!c) { close(fd); continue; }
    c->fd = fd;
    c->off = c->len = 0;
    c->peer_eof = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { perror("epoll_ctl ADD"); conn_close(c); }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]); return 2; }
  signal(SIGPIPE, SIG_IGN);  /* a write to a reset peer must return EPIPE, not kill the server */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &sa.sin_addr) != 1) {
    fprintf(stderr, "bad host\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
  if (listen(lfd, 4096) < 0) { perror("listen"); return 1; }

  ep = epoll_create1(EPOLL_CLOEXEC);
  int spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  static int listen_tag; /* distinguishes the listen socket from connections in epoll data */
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_tag};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &listen_tag) accept_all(lfd, &spare_fd);
      else conn_event(evs[i].data.ptr, evs[i].events);
    }
  }
}
