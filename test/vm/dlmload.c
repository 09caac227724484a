/* dlmload: deterministic libdlm workload for dlm-rv's VM tests.
 *
 *   dlmload [-l LOCKSPACE] [-r ROUNDS] [-x] [-q] [-D]
 *     -l  lockspace name (default "dlmload"); created by the parent, opened by each worker
 *     -r  rounds (default 2); resource names carry the round number ("ld-alpha-1", ...)
 *     -x  release the lockspace at the end (dlm_release_lockspace force=1)
 *     -q  do not print the step log, only the summary
 *     -D  leave out the double unlock (whose visibility to tracepoints depends on the kernel)
 *
 * The parent does no locking. It drives two worker processes through pipes, one command at a time,
 * so the order of every DLM operation is fixed: worker A lives for the whole run, worker B is
 * forked anew each round and SIGKILLed at the round's end while it holds locks. A worker runs each
 * command (async dlm_ls_lock / dlm_ls_unlock, or wait for a completion / blocking callback by
 * polling its lockspace fd and calling dlm_dispatch) and answers with one line. Every answer is
 * checked against what a correct DLM must do; a wrong one is printed as UNEXPECTED and makes the
 * exit status 1.
 *
 * One round, per resource (A, B = workers; "-> st" = completion status the worker reads):
 *  alpha  contention, NOQUEUE, up/down/middle conversions, a refused request
 *     A EX -> 0 | B PR NOQUEUE -> -11 | B PR (waits; A gets a blocking callback) |
 *     A EX->PR down -> 0, B's PR -> 0 | A PR->EX NOQUEUE -> -11 (A stays PR) |
 *     A PR->EX up (waits; B blocking) | A PR->CW while that conversion waits: refused at once
 *     (-EBUSY from the write) | B unlock -> -65538, A's EX -> 0 | A EX->PR -> 0 |
 *     A PR->CW middle (no other holder) -> 0 | B CW -> 0 | B CW->PR middle (waits; A blocking) |
 *     A CW->NL -> 0, B's PR -> 0 | A unlock, B unlock -> -65538
 *  beta   cancels that win
 *     A EX -> 0 | B NL -> 0 | B NL->EX (waits; A blocking) | B cancel -> -65537 (back at NL) |
 *     B PR new (waits) | B cancel -> -65537 | B unlock, A unlock -> -65538
 *  eps    a cancel that loses, and an overlap unlock (unlock of a request that is still waiting)
 *     A EX -> 0 | B PR (waits; A blocking) | A EX->NL -> 0 (B's PR is granted now, in the kernel) |
 *     B cancel: nothing left to cancel, the write returns 0 and no cancel completion ever comes |
 *     B reads its grant -> 0 | A EX new request (waits on B's PR; B blocking) | A unlocks that
 *     waiting request -> -65538 | B unlock, A unlock (NL) -> -65538
 *  zeta   refused unlocks
 *     A PR -> 0 | A unlock with an invalid flag (NOQUEUE): refused at once (-EINVAL, traced as
 *     dlm_unlock_end error=-22) | A unlock | A unlocks it again before reading the first unlock's
 *     completion: refused at once (-ENOENT); 6.1 traces it (dlm_unlock_end error=-2), 6.12 does not
 *     (the lkb is already gone: no event at all); the expectation follows uname -r (< 6.12: traced);
 *     -D leaves this step out | A reads -65538
 *  gamma/delta/theta   an owner killed while holding and waiting
 *     B EX gamma -> 0 | B PR delta -> 0 | A EX theta -> 0 | A EX gamma (waits; B blocking) |
 *     A PR delta -> 0 | B PR theta (waits; A blocking) | parent SIGKILLs B, which holds EX gamma and
 *     PR delta and waits for PR theta: the kernel frees the three in dlm_clear_proc_locks() with no
 *     dlm_unlock_* and no dlm_ast event | A's EX gamma -> 0 | A unlocks gamma, delta, theta -> -65538
 * After each round both workers are checked to have no callback left unread.
 *
 * At the end it prints what it issued ("ops KIND N") and the normalized events a collector must
 * count ("expect KEY N"; keys as in test/vm/tracecount.awk): requests (dlm_lock_start),
 * request_failed (dlm_lock_end error != 0), releases (dlm_unlock_start, cancels included),
 * releases_cancel, release_failed (dlm_unlock_end error != 0), completion_<status> (dlm_ast as read
 * by the owner), blockings (dlm_bast). "vanished_on_kill N" = locks the kernel dropped for killed
 * owners without any tracepoint (a dlm_add_cb hook sees each as a -65538 completion).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libdlm.h>

enum { M_NL = 0, M_CR = 1, M_CW = 2, M_PR = 3, M_PW = 4, M_EX = 5 };
static const char *mode_name[] = { "NL", "CR", "CW", "PR", "PW", "EX" };

#define NSLOTS 16
#define WAIT_MS 15000

/* ------------------------------------------------------------------ worker side */
struct slot { struct dlm_lksb lksb; int asts, basts; };
static struct slot slots[NSLOTS];
static int total_asts, total_basts;   /* callbacks received */
static int used_asts, used_basts;     /* callbacks consumed by W / B commands */
static dlm_lshandle_t wls;
static int wfd;

static void on_ast(void *arg) { slots[(long)arg].asts++; total_asts++; }
static void on_bast(void *arg) { slots[(long)arg].basts++; total_basts++; }

/* dispatch callbacks until *counter > 0 (or, with counter NULL, for ms) */
static int dispatch_until(int *counter, int ms)
{
	for (;;) {
		if (counter && *counter > 0)
			return 0;
		struct pollfd p = { .fd = wfd, .events = POLLIN };
		int rv = poll(&p, 1, ms);
		if (rv < 0 && errno == EINTR)
			continue;
		if (rv <= 0)
			return counter ? -1 : 0;
		dlm_dispatch(wfd);
	}
}

static void worker(const char *lsname, FILE *in, FILE *out)
{
	wls = dlm_open_lockspace(lsname);
	if (!wls) {
		fprintf(out, "ERR open %s\n", strerror(errno));
		fflush(out);
		_exit(1);
	}
	wfd = dlm_ls_get_fd(wls);
	fprintf(out, "OK pid=%d\n", getpid());
	fflush(out);
	char op[4], name[80];
	int s, mode;
	unsigned flags;
	while (fscanf(in, "%3s %d %d %x %79s", op, &s, &mode, &flags, name) == 5) {
		struct slot *sl = &slots[s % NSLOTS];
		if (op[0] == 'L') {
			int rv = dlm_ls_lock(wls, mode, &sl->lksb, flags, name, strlen(name), 0,
					     on_ast, (void *)(long)s, on_bast, NULL);
			fprintf(out, "rv=%d errno=%d lkid=%x\n", rv, rv ? errno : 0, sl->lksb.sb_lkid);
		} else if (op[0] == 'U') {
			int rv = dlm_ls_unlock(wls, sl->lksb.sb_lkid, flags, &sl->lksb, (void *)(long)s);
			fprintf(out, "rv=%d errno=%d lkid=%x\n", rv, rv ? errno : 0, sl->lksb.sb_lkid);
		} else if (op[0] == 'W') {
			if (dispatch_until(&sl->asts, WAIT_MS)) {
				fprintf(out, "timeout\n");
			} else {
				sl->asts--; used_asts++;
				fprintf(out, "status=%d sbflags=%#x lkid=%x\n", sl->lksb.sb_status,
					sl->lksb.sb_flags, sl->lksb.sb_lkid);
			}
		} else if (op[0] == 'B') {
			if (dispatch_until(&sl->basts, WAIT_MS)) {
				fprintf(out, "timeout\n");
			} else {
				sl->basts--; used_basts++;
				fprintf(out, "blocking\n");
			}
		} else if (op[0] == 'D') {       /* drain: anything left unread? */
			dispatch_until(NULL, mode > 0 ? mode : 300);
			fprintf(out, "left asts=%d basts=%d\n", total_asts - used_asts, total_basts - used_basts);
		} else if (op[0] == 'Q') {
			dlm_close_lockspace(wls);
			fprintf(out, "closed\n");
			fflush(out);
			_exit(0);
		} else {
			fprintf(out, "ERR op %s\n", op);
		}
		fflush(out);
	}
	_exit(0);
}

/* ------------------------------------------------------------------ parent side */
struct proc { char name; pid_t pid; FILE *to, *from; };
static const char *g_ls = "dlmload";
static int quiet, nstep, unexpected;
/* the second unlock of a lock whose unlock completion is not read yet: refused with ENOENT on 6.1
   and 6.12, but 6.1 still finds the lkb (dlm_unlock_start/end with error=-2 are traced) while 6.12
   has freed it already (refused before any tracepoint) */
static int double_unlock = 1, double_unlock_traced = 1;

/* what was issued */
static int ops_lock_new, ops_lock_convert, ops_noqueue, ops_unlock, ops_cancel, ops_kill;
/* normalized events a collector must see */
static int e_requests, e_request_failed, e_releases, e_releases_cancel, e_release_failed;
static int e_blockings, e_vanished;
#define NST 5
static const int st_values[NST] = { 0, -11, -35, -65537, -65538 };
static int e_completion[NST];

static void say(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static struct proc spawn(char name)
{
	int a[2], b[2];
	struct proc p = { .name = name };
	if (pipe(a) || pipe(b)) {
		perror("pipe");
		exit(2);
	}
	fflush(stdout);
	p.pid = fork();
	if (p.pid < 0) {
		perror("fork");
		exit(2);
	}
	if (p.pid == 0) {
		close(a[1]);
		close(b[0]);
		worker(g_ls, fdopen(a[0], "r"), fdopen(b[1], "w"));
	}
	close(a[0]);
	close(b[1]);
	p.to = fdopen(a[1], "w");
	p.from = fdopen(b[0], "r");
	char line[256];
	if (!fgets(line, sizeof line, p.from) || strncmp(line, "OK", 2)) {
		fprintf(stderr, "dlmload: worker %c failed to start: %s", name, line);
		exit(2);
	}
	say("    worker %c: %s", name, line);
	return p;
}

/* send one command, read the answer, check it contains `want` */
static void cmd(struct proc *p, char op, int slot, int mode, unsigned flags, const char *res,
		const char *want, const char *what)
{
	char line[256];
	fprintf(p->to, "%c %d %d %x %s\n", op, slot, mode, flags, res ? res : "-");
	fflush(p->to);
	if (!fgets(line, sizeof line, p->from))
		strcpy(line, "EOF (worker died)\n");
	int bad = want && !strstr(line, want);
	unexpected += bad;
	if (bad || !quiet)
		printf("%4d %c %-46s -> %s%s", ++nstep, p->name, what, bad ? "UNEXPECTED " : "", line);
	else
		++nstep;
}

static void count_status(int st)
{
	for (int i = 0; i < NST; i++)
		if (st_values[i] == st) {
			e_completion[i]++;
			return;
		}
}

/* lock request (new or conversion); err = errno the write must fail with, 0 = accepted */
static void lock(struct proc *p, int slot, int mode, unsigned flags, const char *res, int err, const char *what)
{
	char want[32], desc[96];
	snprintf(want, sizeof want, "rv=%d errno=%d ", err ? -1 : 0, err);
	snprintf(desc, sizeof desc, "%s %s%s %s", flags & LKF_CONVERT ? "convert" : "lock", mode_name[mode],
		 flags & LKF_NOQUEUE ? " NOQUEUE" : "", what);
	cmd(p, 'L', slot, mode, flags, res, want, desc);
	if (flags & LKF_CONVERT) ops_lock_convert++; else ops_lock_new++;
	if (flags & LKF_NOQUEUE) ops_noqueue++;
	e_requests++;
	if (err) e_request_failed++;
}

/* unlock or cancel; err = errno the write must fail with; traced = 0 when the kernel refuses it
   before any tracepoint (the lock id is not found) */
static void unlock_t(struct proc *p, int slot, unsigned flags, int err, int traced, const char *what)
{
	char want[32], desc[96];
	snprintf(want, sizeof want, "rv=%d errno=%d ", err ? -1 : 0, err);
	snprintf(desc, sizeof desc, "%s %s", flags & LKF_CANCEL ? "cancel" : "unlock", what);
	cmd(p, 'U', slot, 0, flags, NULL, want, desc);
	if (flags & LKF_CANCEL) ops_cancel++; else ops_unlock++;
	if (!traced)
		return;
	if (flags & LKF_CANCEL) e_releases_cancel++;
	e_releases++;
	if (err) e_release_failed++;
}
#define unlock(p, slot, flags, err, what) unlock_t(p, slot, flags, err, 1, what)

static void wait_ast(struct proc *p, int slot, int status, const char *what)
{
	char want[32], desc[96];
	snprintf(want, sizeof want, "status=%d ", -status);   /* the lksb holds it positive */
	snprintf(desc, sizeof desc, "  completion %d %s", status, what);
	cmd(p, 'W', slot, 0, 0, NULL, want, desc);
	count_status(status);
}

static void wait_bast(struct proc *p, int slot, const char *what)
{
	char desc[96];
	snprintf(desc, sizeof desc, "  blocking callback %s", what);
	cmd(p, 'B', slot, 0, 0, NULL, "blocking", desc);
	e_blockings++;
}

static void drain(struct proc *p)
{
	cmd(p, 'D', 0, 300, 0, NULL, "left asts=0 basts=0", "  no callback left unread");
}

#define CV LKF_CONVERT
#define NQ LKF_NOQUEUE

static void round_(struct proc *A, int r)
{
	char alpha[32], beta[32], eps[32], zeta[32], gamma[32], delta[32], theta[32];
	snprintf(alpha, 32, "ld-alpha-%d", r);
	snprintf(beta, 32, "ld-beta-%d", r);
	snprintf(eps, 32, "ld-eps-%d", r);
	snprintf(zeta, 32, "ld-zeta-%d", r);
	snprintf(gamma, 32, "ld-gamma-%d", r);
	snprintf(delta, 32, "ld-delta-%d", r);
	snprintf(theta, 32, "ld-theta-%d", r);
	say("=== round %d\n", r);
	struct proc B = spawn('B');

	/* alpha: contention, NOQUEUE, conversions, a refused request */
	lock(A, 0, M_EX, 0, alpha, 0, "alpha");
	wait_ast(A, 0, 0, "granted EX");
	lock(&B, 0, M_PR, NQ, alpha, 0, "alpha (A holds EX)");
	wait_ast(&B, 0, -11, "NOQUEUE refused");
	lock(&B, 0, M_PR, 0, alpha, 0, "alpha (waits on A's EX)");
	wait_bast(A, 0, "(B wants PR)");
	lock(A, 0, M_PR, CV, alpha, 0, "alpha EX->PR (down)");
	wait_ast(A, 0, 0, "granted PR");
	wait_ast(&B, 0, 0, "B's PR granted");
	lock(A, 0, M_EX, CV | NQ, alpha, 0, "alpha PR->EX (B holds PR)");
	wait_ast(A, 0, -11, "NOQUEUE conversion refused, A stays PR");
	lock(A, 0, M_EX, CV, alpha, 0, "alpha PR->EX (up, waits on B's PR)");
	wait_bast(&B, 0, "(A wants EX)");
	lock(A, 0, M_CW, CV, alpha, EBUSY, "alpha while converting: refused");
	unlock(&B, 0, 0, 0, "alpha PR");
	wait_ast(&B, 0, -65538, "unlocked");
	wait_ast(A, 0, 0, "A's EX granted");
	lock(A, 0, M_PR, CV, alpha, 0, "alpha EX->PR (down)");
	wait_ast(A, 0, 0, "granted PR");
	lock(A, 0, M_CW, CV, alpha, 0, "alpha PR->CW (middle, alone)");
	wait_ast(A, 0, 0, "granted CW");
	lock(&B, 0, M_CW, 0, alpha, 0, "alpha (compatible with CW)");
	wait_ast(&B, 0, 0, "granted CW");
	lock(&B, 0, M_PR, CV, alpha, 0, "alpha CW->PR (middle, waits on A's CW)");
	wait_bast(A, 0, "(B wants PR)");
	lock(A, 0, M_NL, CV, alpha, 0, "alpha CW->NL (down)");
	wait_ast(A, 0, 0, "granted NL");
	wait_ast(&B, 0, 0, "B's PR granted");
	unlock(A, 0, 0, 0, "alpha NL");
	wait_ast(A, 0, -65538, "unlocked");
	unlock(&B, 0, 0, 0, "alpha PR");
	wait_ast(&B, 0, -65538, "unlocked");

	/* beta: cancels that win */
	lock(A, 1, M_EX, 0, beta, 0, "beta");
	wait_ast(A, 1, 0, "granted EX");
	lock(&B, 1, M_NL, 0, beta, 0, "beta");
	wait_ast(&B, 1, 0, "granted NL");
	lock(&B, 1, M_EX, CV, beta, 0, "beta NL->EX (waits on A's EX)");
	wait_bast(A, 1, "(B wants EX)");
	unlock(&B, 1, LKF_CANCEL, 0, "the waiting conversion");
	wait_ast(&B, 1, -65537, "cancelled, B back at NL");
	lock(&B, 2, M_PR, 0, beta, 0, "beta (new, waits on A's EX)");
	unlock(&B, 2, LKF_CANCEL, 0, "the waiting request");
	wait_ast(&B, 2, -65537, "cancelled, request gone");
	unlock(&B, 1, 0, 0, "beta NL");
	wait_ast(&B, 1, -65538, "unlocked");
	unlock(A, 1, 0, 0, "beta EX");
	wait_ast(A, 1, -65538, "unlocked");

	/* eps: a cancel that loses, an overlap unlock */
	lock(A, 3, M_EX, 0, eps, 0, "eps");
	wait_ast(A, 3, 0, "granted EX");
	lock(&B, 3, M_PR, 0, eps, 0, "eps (waits on A's EX)");
	wait_bast(A, 3, "(B wants PR)");
	lock(A, 3, M_NL, CV, eps, 0, "eps EX->NL (B's PR is granted now)");
	wait_ast(A, 3, 0, "granted NL");
	unlock(&B, 3, LKF_CANCEL, 0, "eps PR, already granted (loses)");
	wait_ast(&B, 3, 0, "B's PR granted, no cancel completion");
	lock(A, 4, M_EX, 0, eps, 0, "eps (new, waits on B's PR)");
	wait_bast(&B, 3, "(A wants EX)");
	unlock(A, 4, 0, 0, "eps EX request still waiting (overlap)");
	wait_ast(A, 4, -65538, "unlocked while waiting");
	unlock(&B, 3, 0, 0, "eps PR");
	wait_ast(&B, 3, -65538, "unlocked");
	unlock(A, 3, 0, 0, "eps NL");
	wait_ast(A, 3, -65538, "unlocked");

	/* zeta: refused unlocks */
	lock(A, 5, M_PR, 0, zeta, 0, "zeta");
	wait_ast(A, 5, 0, "granted PR");
	unlock(A, 5, LKF_NOQUEUE, EINVAL, "zeta with an invalid flag: refused");
	unlock(A, 5, 0, 0, "zeta PR");
	if (double_unlock)
		unlock_t(A, 5, 0, ENOENT, double_unlock_traced, "zeta again before its completion: refused");
	wait_ast(A, 5, -65538, "unlocked");

	/* gamma/delta/theta: owner killed while holding and waiting */
	lock(&B, 6, M_EX, 0, gamma, 0, "gamma");
	wait_ast(&B, 6, 0, "granted EX");
	lock(&B, 7, M_PR, 0, delta, 0, "delta");
	wait_ast(&B, 7, 0, "granted PR");
	lock(A, 8, M_EX, 0, theta, 0, "theta");
	wait_ast(A, 8, 0, "granted EX");
	lock(A, 6, M_EX, 0, gamma, 0, "gamma (waits on B's EX)");
	wait_bast(&B, 6, "(A wants EX)");
	lock(A, 7, M_PR, 0, delta, 0, "delta (compatible with B's PR)");
	wait_ast(A, 7, 0, "granted PR");
	lock(&B, 8, M_PR, 0, theta, 0, "theta (waits on A's EX)");
	wait_bast(A, 8, "(B wants PR)");
	drain(&B);
	say("%4d parent: SIGKILL B (pid %d): holds EX gamma + PR delta, waits PR theta\n", ++nstep, B.pid);
	kill(B.pid, SIGKILL);
	int st;
	waitpid(B.pid, &st, 0);
	fclose(B.to);
	fclose(B.from);
	ops_kill++;
	e_vanished += 3;
	wait_ast(A, 6, 0, "A's EX gamma granted after B died");
	unlock(A, 6, 0, 0, "gamma EX");
	wait_ast(A, 6, -65538, "unlocked");
	unlock(A, 7, 0, 0, "delta PR");
	wait_ast(A, 7, -65538, "unlocked");
	unlock(A, 8, 0, 0, "theta EX");
	wait_ast(A, 8, -65538, "unlocked");
	drain(A);
}

int main(int argc, char **argv)
{
	int rounds = 2, leave = 0, c;
	while ((c = getopt(argc, argv, "l:r:xqDh")) != -1) {
		switch (c) {
		case 'l': g_ls = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'x': leave = 1; break;
		case 'q': quiet = 1; break;
		case 'D': double_unlock = 0; break;
		default:
			fprintf(stderr, "usage: dlmload [-l LOCKSPACE] [-r ROUNDS] [-x] [-q] [-D]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	struct utsname u;
	int kmaj = 0, kmin = 0;
	if (uname(&u) == 0)
		sscanf(u.release, "%d.%d", &kmaj, &kmin);
	double_unlock_traced = kmaj < 6 || (kmaj == 6 && kmin < 12);
	dlm_lshandle_t pls = dlm_create_lockspace(g_ls, 0600);
	if (!pls) {
		fprintf(stderr, "dlmload: dlm_create_lockspace(%s): %s\n", g_ls, strerror(errno));
		return 2;
	}
	say("dlmload: parent pid %d, lockspace %s, %d round(s)\n", getpid(), g_ls, rounds);
	struct proc A = spawn('A');
	for (int r = 1; r <= rounds; r++)
		round_(&A, r);
	cmd(&A, 'Q', 0, 0, 0, NULL, "closed", "close the lockspace");
	waitpid(A.pid, NULL, 0);
	if (leave) {
		int rv = dlm_release_lockspace(g_ls, pls, 1);
		if (rv) {
			printf("dlmload: dlm_release_lockspace: %s\n", strerror(errno));
			unexpected++;
		}
	} else {
		dlm_close_lockspace(pls);
	}

	printf("dlmload: lockspace %s, %d round(s), %d steps, %d unexpected\n", g_ls, rounds, nstep, unexpected);
	printf("ops lock_new %d\nops lock_convert %d\nops noqueue %d\nops unlock %d\nops cancel %d\nops kill %d\n",
	       ops_lock_new, ops_lock_convert, ops_noqueue, ops_unlock, ops_cancel, ops_kill);
	printf("expect requests %d\nexpect request_failed %d\nexpect releases %d\nexpect releases_cancel %d\n"
	       "expect release_failed %d\n", e_requests, e_request_failed, e_releases, e_releases_cancel,
	       e_release_failed);
	for (int i = 0; i < NST; i++)
		printf("expect completion_%d %d\n", st_values[i], e_completion[i]);
	printf("expect blockings %d\n", e_blockings);
	printf("vanished_on_kill %d\n", e_vanished);
	return unexpected ? 1 : 0;
}
