/*
 * The floor for issue 4's "echo server CPU-µs per round trip" bar: the
 * cheapest readiness-based echo server there is, with no runtime at all.
 * One thread, one level-triggered epoll set, and per ready socket exactly
 * one read(2) and one write(2); epoll_wait(2) is amortised over a batch of
 * up to 256 sockets. Any server that reads with read(2)/recv(2) and writes
 * with write(2)/send(2) -- Go's, goro's -- pays at least this much kernel
 * time per round trip, so its CPU-µs per round trip, set beside Go's from
 * the same run, bounds what a runtime can achieve against Go.
 *
 * Usage: echo_floor PORT   (listens on 127.0.0.1:PORT; runs until killed)
 * Built and run by ci/load.sh.
 */
#include "floor.h" /* first: it defines _GNU_SOURCE */

#include <errno.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo_floor PORT\n");
    return 2;
  }
  floor_raise_nofile(RLIM_INFINITY);
  int poll_fd;
  int listener = floor_listen("echo_floor", argv[1], &poll_fd);
  struct epoll_event ready[256];
  static char buffer[65536];
  for (;;) {
    int count = epoll_wait(poll_fd, ready, 256, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        floor_accept_all(listener, poll_fd, INT_MAX, NULL); /* no cap */
        continue;
      }
      ssize_t got = read(fd, buffer, sizeof buffer);
      if (got < 0 && errno == EAGAIN) {
        continue; /* a spurious wake-up: the socket stays in the set */
      }
      if (got <= 0 || write(fd, buffer, (size_t)got) != got) {
        close(fd); /* EOF, error, or a short write: drop the connection */
      }
    }
  }
}
