/*
 * echo-udp-ref: the reference UDP echo server (RFC 862). One thread, blocking socket: recvmmsg waits for
 * the first datagram and takes every other one already queued (MSG_WAITFORONE), sendmmsg answers the whole
 * batch in one system call. Node's dgram has no such batching (docs/measurements.md §7).
 *
 * usage: echo-udp-ref PORT [HOST]     (HOST defaults to 127.0.0.1). Prints nothing but errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DGRAM 65536

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]); return 2; }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &sa.sin_addr) != 1) {
    fprintf(stderr, "bad host\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }

  static char bufs[BATCH][MAX_DGRAM];
  struct sockaddr_in peers[BATCH];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MAX_DGRAM};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i], .msg_namelen = sizeof peers[i],
                                        .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 1;
    }
    /* Echo each datagram with its own length to its own sender (msg_name/namelen were filled in). */
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    for (int done = 0; done < n;) {
      int m = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
      if (m < 0) {
        if (errno == EINTR) continue;
        /* ECONNREFUSED from an earlier ICMP, ENOBUFS: drop this datagram, as UDP may. */
        done++;
        continue;
      }
      done += m;
    }
  }
}
