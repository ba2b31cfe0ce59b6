/*
 * daytime-ref: the reference TCP daytime server (RFC 867): accept, write one date line, close.
 * Blocking accept loop on one thread: each answer is one short write to a fresh socket, which never blocks.
 * Format as inetd's built-in: "Wed Nov 26 06:31:00 2025\r\n" (ctime(3), UTC).
 *
 * usage: daytime-ref PORT [HOST]     (HOST defaults to 127.0.0.1). Prints nothing but errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]); return 2; }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &sa.sin_addr) != 1) {
    fprintf(stderr, "bad host\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
  if (listen(lfd, 4096) < 0) { perror("listen"); return 1; }
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED) perror("accept4");
      if (errno == EMFILE || errno == ENFILE) sleep(1);
      continue;
    }
    char line[64];
    time_t now = time(NULL);
    struct tm tm;
    size_t n = strftime(line, sizeof line, "%a %b %e %H:%M:%S %Y\r\n", gmtime_r(&now, &tm));
    if (write(fd, line, n) < 0 && errno != EPIPE && errno != ECONNRESET) perror("write");
    close(fd);
  }
}
