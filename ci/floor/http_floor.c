/*
 * The ceiling for issue 4's wrk rows: the cheapest keep-alive HTTP/1.1
 * server there is, with no runtime and no real parser. One thread, one
 * level-triggered epoll set; per ready socket one read(2), then one write(2)
 * carrying one canned response (the same bytes as examples/http_hello.rs)
 * for every complete request head ("\r\n\r\n") in what was read. It assumes
 * wrk's GET requests (no bodies) and is not a general server.
 *
 * wrk -t1 is one thread on a machine of two cores, so past some connection
 * count it, not the server, sets the requests per second: this server costs
 * the least CPU per request, leaves wrk the other core, and so measures the
 * most requests per second wrk can drive here. ci/load.sh runs it beside
 * goro and Go: goro's figure against Go's is bounded by this one's.
 *
 * Usage: http_floor PORT   (listens on 127.0.0.1:PORT; runs until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 65536

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/* How many bytes of "\r\n\r\n" each connection has matched so far, so a
 * request head split across reads is still counted once. */
static unsigned char matched[MAX_CONNS];

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: http_floor PORT\n");
    return 2;
  }
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max < MAX_CONNS ? limit.rlim_max : MAX_CONNS;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 4096) != 0) {
    perror("http_floor: listen");
    return 1;
  }
  int poll_fd = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  struct epoll_event ready[256];
  epoll_ctl(poll_fd, EPOLL_CTL_ADD, listener, &event);
  static char buffer[65536];
  static char replies[65536];
  const size_t size = sizeof RESPONSE - 1;
  for (;;) {
    int count = epoll_wait(poll_fd, ready, 256, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int conn;
        while ((conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (conn >= MAX_CONNS) {
            close(conn);
            continue;
          }
          setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          matched[conn] = 0;
          struct epoll_event conn_event = {.events = EPOLLIN, .data.fd = conn};
          epoll_ctl(poll_fd, EPOLL_CTL_ADD, conn, &conn_event);
        }
        continue;
      }
      ssize_t got = read(fd, buffer, sizeof buffer);
      if (got < 0 && errno == EAGAIN) {
        continue;
      }
      if (got <= 0) {
        close(fd);
        continue;
      }
      /* Count request heads: a tiny state machine over "\r\n\r\n". */
      size_t heads = 0;
      unsigned state = matched[fd];
      for (ssize_t k = 0; k < got; k++) {
        char want = (state % 2 == 0) ? '\r' : '\n';
        if (buffer[k] == want) {
          state++;
        } else {
          state = buffer[k] == '\r' ? 1 : 0;
        }
        if (state == 4) {
          heads++;
          state = 0;
        }
      }
      matched[fd] = (unsigned char)state;
      /* One write per batch of at most sizeof replies; more than that many
       * pipelined heads in one read take further writes. */
      while (heads > 0) {
        size_t length = 0;
        while (heads > 0 && length + size <= sizeof replies) {
          memcpy(replies + length, RESPONSE, size);
          length += size;
          heads--;
        }
        if (write(fd, replies, length) != (ssize_t)length) {
          close(fd); /* an error or a short write: drop the connection */
          break;
        }
      }
    }
  }
}
