/* target: an HTTP/1.1 keep-alive server on 127.0.0.1 standing in for an
 * n8n webhook. It answers every request 200 {"message":"Workflow was
 * started"} and takes seq, t_ns and total out of each JSON body.
 *
 * It serves until SIGTERM, SIGINT, end of standard input or its time
 * limit, and is driven by lines on standard input, one run at a time:
 *   arm N MAX_SEQ   forget the last run; count sequence numbers below
 *                   MAX_SEQ, and report by itself once N distinct ones
 *                   arrived (N = 0: only on request)
 *   report          report now and disarm
 *   peek            print {"peek": distinct sequence numbers so far}
 * A report is one JSON line on standard output: counts, and latencies
 * from each body's t_ns (the sender's CLOCK_REALTIME) to its receipt. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX	(64 << 10)
#define BODY_MAX	(16 << 20)
#define EVENTS		256

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 34\r\n"
    "\r\n"
    "{\"message\":\"Workflow was started\"}";
static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

struct conn {
	int	 fd;
	char	*in;
	size_t	 inlen, incap;
	char	*out;
	size_t	 outlen, outcap;
	int	 continued;	/* 100 Continue sent for this request */
	int	 closing;	/* close once out is written */
	int	 polling_out;	/* EPOLLOUT is in the interest set */
};

struct stats {
	int	 armed;
	long	 expect;
	long	 requests, with_seq, unique, dups, out_of_range, bad;
	long	 accepted, open, max_open, continues;
	long	 total;		/* last "total" seen, -1: none */
	int64_t	 first_recv, last_recv, min_send;
	int64_t	*recv_at;	/* by seq, 0 until seen */
	int64_t	*sent_at;
	long	 max_seq, capacity;
};

static volatile sig_atomic_t	stop_signal;
static struct stats		st = { .total = -1 };

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static int
grow(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	char *p;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return 0;
	if ((p = realloc(*buf, n)) == NULL)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

static int
append_out(struct conn *c, const char *data, size_t len)
{
	if (grow(&c->out, &c->outcap, c->outlen + len) == -1)
		return -1;
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	return 0;
}

/* Writes what is pending; returns -1 when the connection is dead. */
static int
flush_out(struct conn *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->outlen) {
		n = write(c->fd, c->out + done, c->outlen - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return -1;
	}
	memmove(c->out, c->out + done, c->outlen - done);
	c->outlen -= done;
	return 0;
}

/* The integer after "name": in body, or fallback when absent. */
static long long
field(const char *body, size_t len, const char *name, long long fallback)
{
	char key[32];
	const char *p;
	int n = snprintf(key, sizeof(key), "\"%s\":", name);

	if ((p = memmem(body, len, key, (size_t)n)) == NULL)
		return fallback;
	p += n;
	while (p < body + len && *p == ' ')
		p++;
	if (p >= body + len || (*p != '-' && (*p < '0' || *p > '9')))
		return fallback;
	return strtoll(p, NULL, 10);
}

static void
record(const char *body, size_t len, int64_t at)
{
	long long seq = field(body, len, "seq", -1);
	long long sent = field(body, len, "t_ns", 0);
	long long total = field(body, len, "total", -1);

	if (!st.armed)
		return;
	st.requests++;
	if (st.first_recv == 0)
		st.first_recv = at;
	if (total >= 0)
		st.total = (long)total;
	if (seq < 0)
		return;
	st.with_seq++;
	st.last_recv = at;
	if (seq >= st.max_seq) {
		st.out_of_range++;
		return;
	}
	if (st.recv_at[seq] != 0) {
		st.dups++;
		return;
	}
	st.recv_at[seq] = at;
	st.sent_at[seq] = sent;
	st.unique++;
	if (sent > 0 && (st.min_send == 0 || sent < st.min_send))
		st.min_send = sent;
}

/* Finds header name (lower case, with its colon) in head; returns its
 * value or NULL. */
static const char *
header(const char *head, size_t len, const char *name)
{
	size_t n = strlen(name);
	const char *p = head, *end = head + len, *eol;

	while (p < end && (eol = memmem(p, (size_t)(end - p), "\r\n", 2))) {
		if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0) {
			p += n;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = eol + 2;
	}
	return NULL;
}

/* Handles every complete request in c->in; returns -1 to drop the
 * connection. */
static int
serve(struct conn *c)
{
	size_t used = 0;

	for (;;) {
		char *start = c->in + used, *end;
		size_t avail = c->inlen - used, headlen;
		const char *v;
		long long clen = 0;

		if (avail == 0)
			break;
		if ((end = memmem(start, avail, "\r\n\r\n", 4)) == NULL) {
			if (avail > HEAD_MAX)
				return -1;
			break;
		}
		headlen = (size_t)(end - start) + 4;
		if (header(start, headlen, "transfer-encoding:") != NULL) {
			st.bad++;
			return -1;	/* no sender here uses chunks */
		}
		if ((v = header(start, headlen, "content-length:")) != NULL)
			clen = strtoll(v, NULL, 10);
		if (clen < 0 || clen > BODY_MAX) {
			st.bad++;
			return -1;
		}
		if (avail < headlen + (size_t)clen) {
			v = header(start, headlen, "expect:");
			if (v != NULL && strncasecmp(v, "100-continue", 12) == 0
			    && !c->continued) {
				c->continued = 1;
				st.continues++;
				if (append_out(c, CONTINUE,
				    sizeof(CONTINUE) - 1) == -1)
					return -1;
			}
			break;
		}
		record(start + headlen, (size_t)clen, now_ns());
		if (append_out(c, RESPONSE, sizeof(RESPONSE) - 1) == -1)
			return -1;
		v = header(start, headlen, "connection:");
		if (v != NULL && strncasecmp(v, "close", 5) == 0)
			c->closing = 1;
		c->continued = 0;
		used += headlen + (size_t)clen;
		if (c->closing)
			break;
	}
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	return 0;
}

static void
drop(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	st.open--;
}

static void
accept_all(int ep, int lfd)
{
	struct epoll_event ev;
	struct conn *c;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) != -1) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
			continue;
		}
		st.accepted++;
		if (++st.open > st.max_open)
			st.max_open = st.open;
	}
}

/* Reads what is there, answers it; returns -1 to drop the connection. */
static int
readable(struct conn *c)
{
	ssize_t n;

	for (;;) {
		if (grow(&c->in, &c->incap, c->inlen + 65536) == -1)
			return -1;
		n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
		if (n > 0) {
			c->inlen += (size_t)n;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	if (serve(c) == -1 || flush_out(c) == -1)
		return -1;
	return c->closing && c->outlen == 0 ? -1 : 0;
}

/* Asks for EPOLLOUT while output is pending, and only then. */
static void
want_write(int ep, struct conn *c)
{
	struct epoll_event ev;

	if (c->polling_out == (c->outlen > 0))
		return;
	c->polling_out = c->outlen > 0;
	ev.events = EPOLLIN | (c->outlen > 0 ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int
listen_on(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 4096) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double
percentile_us(const int64_t *v, long n, double p)
{
	long i;

	if (n == 0)
		return -1;
	i = (long)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static void
report(FILE *f, int timed_out)
{
	if (!st.armed)
		return;
	int64_t *lat = malloc(sizeof(*lat) * (size_t)(st.unique + 1));
	long n = 0;

	for (long s = 0; lat != NULL && s < st.max_seq; s++)
		if (st.recv_at[s] != 0 && st.sent_at[s] > 0)
			lat[n++] = st.recv_at[s] - st.sent_at[s];
	if (lat != NULL)
		qsort(lat, (size_t)n, sizeof(*lat), cmp64);
	fprintf(f, "{\"requests\":%ld,\"with_seq\":%ld,\"unique\":%ld,"
	    "\"dups\":%ld,\"out_of_range\":%ld,\"bad\":%ld,"
	    "\"accepted\":%ld,\"max_open\":%ld,\"continues\":%ld,"
	    "\"total\":%ld,\"timed_out\":%d,\"first_recv_ns\":%" PRId64 ","
	    "\"last_recv_ns\":%" PRId64 ",\"min_send_ns\":%" PRId64 ","
	    "\"lat_n\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
	    "\"max_us\":%.1f}\n", st.requests, st.with_seq, st.unique,
	    st.dups, st.out_of_range, st.bad, st.accepted, st.max_open,
	    st.continues, st.total, timed_out, st.first_recv, st.last_recv,
	    st.min_send, n, percentile_us(lat, n, 0.50),
	    percentile_us(lat, n, 0.90), percentile_us(lat, n, 0.99),
	    n > 0 ? (double)lat[n - 1] / 1000.0 : -1.0);
	fflush(f);
	free(lat);
	st.armed = 0;
}

/* Starts a run: every count back to zero. */
static void
arm(long expect, long max_seq)
{
	if (max_seq > st.capacity)
		max_seq = st.capacity;
	memset(st.recv_at, 0, sizeof(*st.recv_at) * (size_t)st.capacity);
	memset(st.sent_at, 0, sizeof(*st.sent_at) * (size_t)st.capacity);
	st.requests = st.with_seq = st.unique = st.dups = 0;
	st.out_of_range = st.bad = st.continues = 0;
	st.accepted = 0;
	st.max_open = st.open;
	st.total = -1;
	st.first_recv = st.last_recv = st.min_send = 0;
	st.max_seq = max_seq;
	st.expect = expect;
	st.armed = 1;
}

/* Handles the command lines waiting on standard input; returns -1 at
 * its end. */
static int
commands(void)
{
	static char line[256];
	static size_t len;
	ssize_t n;
	char *nl;

	n = read(0, line + len, sizeof(line) - 1 - len);
	if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN))
		return -1;
	if (n > 0)
		len += (size_t)n;
	line[len] = '\0';
	while ((nl = strchr(line, '\n')) != NULL) {
		long a, b;

		*nl = '\0';
		if (sscanf(line, "arm %ld %ld", &a, &b) == 2)
			arm(a, b);
		else if (strcmp(line, "report") == 0)
			report(stdout, 0);
		else if (strcmp(line, "peek") == 0) {
			printf("{\"peek\":%ld}\n", st.unique);
			fflush(stdout);
		}
		else
			fprintf(stderr, "target: unknown command: %s\n", line);
		len -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, len + 1);
	}
	if (len == sizeof(line) - 1)
		len = 0;	/* a line too long: dropped */
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: target -p PORT [-S CAPACITY] [-T SECONDS]\n");
	exit(2);
}

/* One event: the listener, standard input or a connection. Returns -1
 * when standard input ended. */
static int
handle(int ep, int lfd, struct epoll_event *e)
{
	struct conn *c = e->data.ptr;

	if (c == NULL)
		accept_all(ep, lfd);
	else if (c == (struct conn *)&st)
		return commands();
	else if ((e->events & EPOLLOUT) && (flush_out(c) == -1 ||
	    (c->closing && c->outlen == 0)))
		drop(ep, c);
	else if ((e->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    readable(c) == -1)
		drop(ep, c);
	else
		want_write(ep, c);
	return 0;
}

int
main(int argc, char **argv)
{
	struct epoll_event events[EVENTS], ev;
	struct sigaction sa;
	double limit_s = 1800;
	int port = 0, ch, ep, lfd, done = 0;
	int64_t deadline;

	st.capacity = 1 << 21;
	while ((ch = getopt(argc, argv, "p:S:T:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'S': st.capacity = atol(optarg); break;
		case 'T': limit_s = atof(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || st.capacity < 1 || limit_s <= 0)
		usage();
	st.recv_at = calloc((size_t)st.capacity, sizeof(*st.recv_at));
	st.sent_at = calloc((size_t)st.capacity, sizeof(*st.sent_at));
	if (st.recv_at == NULL || st.sent_at == NULL)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = listen_on(port)) == -1) {
		fprintf(stderr, "target: cannot listen on 127.0.0.1:%d: %s\n",
		    port, strerror(errno));
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &st;
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	fprintf(stderr, "target: listening on 127.0.0.1:%d\n", port);
	deadline = now_ns() + (int64_t)(limit_s * 1e9);
	while (!stop_signal && !done && now_ns() < deadline) {
		int n = epoll_wait(ep, events, EVENTS, 100);

		for (int i = 0; i < n && !done; i++)
			done = handle(ep, lfd, &events[i]) == -1;
		if (st.armed && st.expect > 0 && st.unique >= st.expect)
			report(stdout, 0);
	}
	report(stdout, !stop_signal && !done);
	return 0;
}
