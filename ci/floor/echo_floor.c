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
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo_floor PORT\n");
    return 2;
  }
  /* 10,000 connections need more than the usual 1,024 descriptors. */
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 4096) != 0) {
    perror("echo_floor: listen");
    return 1;
  }
  int poll_fd = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  struct epoll_event ready[256];
  epoll_ctl(poll_fd, EPOLL_CTL_ADD, listener, &event);
  static char buffer[65536];
  for (;;) {
    int count = epoll_wait(poll_fd, ready, 256, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int conn;
        while ((conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          /* Go's net package sets TCP_NODELAY on every connection too. */
          setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event conn_event = {.events = EPOLLIN, .data.fd = conn};
          epoll_ctl(poll_fd, EPOLL_CTL_ADD, conn, &conn_event);
        }
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
