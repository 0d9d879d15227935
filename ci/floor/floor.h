/*
 * What the floor servers (echo_floor.c, http_floor.c) share: raising the
 * descriptor limit, the loopback listener, and accepting into an epoll set.
 * Each server keeps only its per-socket work.
 */
#ifndef GORO_FLOOR_H
#define GORO_FLOOR_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* 10,000 connections need more than the usual 1,024 descriptors: the soft
 * limit goes up to the hard one, or to `cap` if that is lower. */
static void floor_raise_nofile(rlim_t cap) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max < cap ? limit.rlim_max : cap;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

/* A non-blocking listener on 127.0.0.1:`port`, registered for EPOLLIN in a
 * new epoll set stored in *poll_fd. Exits, naming `name`, on failure. */
static int floor_listen(const char *name, const char *port, int *poll_fd) {
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 4096) != 0) {
    fprintf(stderr, "%s: ", name);
    perror("listen");
    exit(1);
  }
  *poll_fd = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  if (*poll_fd < 0 || epoll_ctl(*poll_fd, EPOLL_CTL_ADD, listener, &event) != 0) {
    fprintf(stderr, "%s: ", name);
    perror("epoll");
    exit(1);
  }
  return listener;
}

/* Accepts every pending connection: non-blocking, TCP_NODELAY (Go's net
 * package sets it on every connection too), level-triggered EPOLLIN. A
 * descriptor at or above `max_fd` is closed at once. Calls `on_accept`
 * (may be NULL) with each kept descriptor. */
static void floor_accept_all(int listener, int poll_fd, int max_fd, void (*on_accept)(int)) {
  int one = 1;
  int conn;
  while ((conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
    if (conn >= max_fd) {
      close(conn);
      continue;
    }
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (on_accept != NULL) {
      on_accept(conn);
    }
    struct epoll_event conn_event = {.events = EPOLLIN, .data.fd = conn};
    epoll_ctl(poll_fd, EPOLL_CTL_ADD, conn, &conn_event);
  }
}

#endif
