/*
 * fdsend-ref: the C reference for bench/ (see docs/benchmarks.md).
 *
 *   fdsend-ref send N COUNT          send COUNT 8-byte messages, each with
 *                                    N descriptors, one sendmsg(2) each
 *   fdsend-ref recv N COUNT WARM MODE
 *                                    receive WARM messages, then COUNT more
 *                                    timed, one recvmsg(2) each; close every
 *                                    descriptor (MODE "loop": close(2) each,
 *                                    "range": close_range(2) over each run of
 *                                    consecutive numbers); print ns per
 *                                    timed message on stdout
 *   fdsend-ref send N COUNT pp       ping-pong: send a message, wait for the
 *                                    reply, close its descriptors; COUNT times
 *   fdsend-ref recv N COUNT WARM pp  the other side: receive a message, send
 *                                    it back with the descriptors it brought,
 *                                    close them; print ns per timed round trip
 *
 * The connected SOCK_STREAM Unix socket is descriptor 3 in both processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SOCK 3
#define MAXFDS 253
#define MSGLEN 8

static void die(const char *what)
{
	fprintf(stderr, "fdsend-ref: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: fdsend-ref send N COUNT [pp]\n"
			"       fdsend-ref recv N COUNT WARM loop|range|pp\n");
	exit(2);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fdsend-ref: bad number %s (want %ld..%ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

/* recv_one receives one message of MSGLEN bytes and n descriptors into
 * fds, EINTR retried; anything else is fatal. */
static void recv_one(int n, int *fds)
{
	char buf[MSGLEN];
	union {
		char buf[CMSG_SPACE(MAXFDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {buf, MSGLEN};
	struct msghdr mh = {0};
	struct cmsghdr *c;
	ssize_t r;
	int got = 0;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
	do
		r = recvmsg(SOCK, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("recvmsg");
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds + got, CMSG_DATA(c), m * sizeof(int));
			got += m;
		}
	}
	if (r != MSGLEN || got != n || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		fprintf(stderr, "fdsend-ref: recvmsg: got %zd bytes and %d descriptors, want %d and %d\n",
			r, got, MSGLEN, n);
		exit(1);
	}
}

/* out is one message of MSGLEN bytes with n descriptors, built once and
 * sent as often as needed. */
struct out {
	char msg[MSGLEN];
	union {
		char buf[CMSG_SPACE(MAXFDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr mh;
};

static void out_init(struct out *o, int n, const int *fds)
{
	struct cmsghdr *c;

	memcpy(o->msg, "fdsend!", MSGLEN);
	memset(&o->mh, 0, sizeof o->mh);
	memset(o->u.buf, 0, CMSG_SPACE(n * sizeof(int)));
	o->iov.iov_base = o->msg;
	o->iov.iov_len = MSGLEN;
	o->mh.msg_iov = &o->iov;
	o->mh.msg_iovlen = 1;
	o->mh.msg_control = o->u.buf;
	o->mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
	c = CMSG_FIRSTHDR(&o->mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
}

/* out_send sends o with one sendmsg(2), EINTR retried. */
static void out_send(struct out *o)
{
	ssize_t w;

	do
		w = sendmsg(SOCK, &o->mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		die("sendmsg");
	if (w != MSGLEN) {
		fprintf(stderr, "fdsend-ref: sendmsg: short write %zd\n", w);
		exit(1);
	}
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (close(fds[i]) < 0)
			die("close");
}

/* ping sends COUNT messages, each after the reply to the one before. */
static void ping(int n, long count)
{
	int fds[MAXFDS], got[MAXFDS];
	int f = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		die("open /dev/null");
	for (int i = 0; i < n; i++)
		fds[i] = f;
	struct out o;

	out_init(&o, n, fds);
	for (long k = 0; k < count; k++) {
		out_send(&o);
		recv_one(n, got);
		close_all(got, n);
	}
}

/* pong sends every message back with the descriptors it brought. */
static double pong(int n, long count, long warm)
{
	struct timespec t0 = {0}, t1;
	int fds[MAXFDS];

	for (long k = 0; k < warm + count; k++) {
		if (k == warm)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		struct out o;

		recv_one(n, fds);
		out_init(&o, n, fds);
		out_send(&o);
		close_all(fds, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / count;
}

static void send_loop(int n, long count)
{
	struct out o;
	int fds[MAXFDS];
	int f = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		die("open /dev/null");
	for (int i = 0; i < n; i++)
		fds[i] = f;
	out_init(&o, n, fds);
	for (long k = 0; k < count; k++)
		out_send(&o);
}

static void close_range_runs(const int *fds, int n)
{
	int i = 0;

	while (i < n) {
		int j = i;
		while (j + 1 < n && fds[j + 1] == fds[j] + 1)
			j++;
		if (j == i) {
			if (close(fds[i]) < 0)
				die("close");
		} else if (syscall(SYS_close_range, fds[i], fds[j], 0) < 0) {
			die("close_range");
		}
		i = j + 1;
	}
}

static double recv_loop(int n, long count, long warm, int use_range)
{
	struct timespec t0 = {0}, t1;
	int fds[MAXFDS];

	for (long k = 0; k < warm + count; k++) {
		if (k == warm)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		recv_one(n, fds);
		if (use_range)
			close_range_runs(fds, n);
		else
			close_all(fds, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / count;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	int n;

	/* Descriptors in flight count against RLIMIT_NOFILE (unless root). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (argc < 4)
		usage();
	n = num(argv[2], 1, MAXFDS);
	if (strcmp(argv[1], "send") == 0 && argc == 4) {
		send_loop(n, num(argv[3], 1, 1L << 40));
		return 0;
	}
	if (strcmp(argv[1], "send") == 0 && argc == 5 && strcmp(argv[4], "pp") == 0) {
		ping(n, num(argv[3], 1, 1L << 40));
		return 0;
	}
	if (strcmp(argv[1], "recv") == 0 && argc == 6 && strcmp(argv[5], "pp") == 0) {
		printf("%.1f\n", pong(n, num(argv[3], 1, 1L << 40), num(argv[4], 0, 1L << 40)));
		return 0;
	}
	if (strcmp(argv[1], "recv") == 0 && argc == 6) {
		int use_range;
		if (strcmp(argv[5], "loop") == 0)
			use_range = 0;
		else if (strcmp(argv[5], "range") == 0)
			use_range = 1;
		else
			usage();
		printf("%.1f\n", recv_loop(n, num(argv[3], 1, 1L << 40), num(argv[4], 0, 1L << 40), use_range));
		return 0;
	}
	usage();
	return 2;
}
