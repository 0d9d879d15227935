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
 * goro and Go: beyond the noise between runs, no server's ratio against Go
 * can exceed this one's.
 *
 * Usage: http_floor PORT   (listens on 127.0.0.1:PORT; runs until killed)
 */
#include "floor.h" /* first: it defines _GNU_SOURCE */

#include <errno.h>
#include <string.h>

#define MAX_CONNS 65536

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/* How many bytes of "\r\n\r\n" each connection has matched so far, so a
 * request head split across reads is still counted once. */
static unsigned char matched[MAX_CONNS];

static void reset_match(int fd) { matched[fd] = 0; }

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: http_floor PORT\n");
    return 2;
  }
  floor_raise_nofile(MAX_CONNS);
  int poll_fd;
  int listener = floor_listen("http_floor", argv[1], &poll_fd);
  struct epoll_event ready[256];
  static char buffer[65536];
  static char replies[65536];
  const size_t size = sizeof RESPONSE - 1;
  for (;;) {
    int count = epoll_wait(poll_fd, ready, 256, -1);
    for (int i = 0; i < count; i++) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        floor_accept_all(listener, poll_fd, MAX_CONNS, reset_match);
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
