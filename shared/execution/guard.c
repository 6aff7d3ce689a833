/*
 * taskflow-guard: start one task so that it dies with its agent (see executors.py).
 *
 *   taskflow-guard [--cpu=N] [--as=N] [--nofile=N] [--nproc=N]
 *                  [--uid=N --gid=N --groups=G1,G2,...] -- AGENT_PID ARGV...
 *
 * The agent starts it as the leader of a new session (the task's process group).
 * It applies the task's resource limits, becomes the task's user with that user's
 * groups only, asks the kernel for SIGHUP when the agent dies, then runs ARGV in a
 * child and waits for it:
 *
 *   - SIGHUP (the agent died): SIGKILL to the whole group, grandchildren included;
 *   - SIGTERM (a timeout or a cancel, sent to the whole group): the task gets it too,
 *     the guard keeps waiting, so the task still has its grace period;
 *   - the task's end: the guard exits with its code, 128+N for a signal N.
 *
 * The same steps, in one exec instead of five (prlimit, setpriv, a shell, env, then
 * the task): the shell version cost about 4 ms of CPU per task, this one about 0.3.
 * Exit codes of its own: 129 when the agent was gone before the death signal was set
 * (the task never starts), 143 after a SIGTERM that came before the task started,
 * 125 for a bad option or a limit or user it cannot apply, 127 when ARGV cannot run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD_SETUP 125
#define MAX_ID 0xfffffffeLL /* (uid_t)-1 means "leave as it is" to setresuid: never that */

static void on_hup(int sig) {
    (void)sig;
    kill(0, SIGKILL); /* the whole process group, this guard included */
}

static void on_term(int sig) {
    (void)sig; /* the task got it too: the guard keeps waiting for its code */
}

static void fail(const char *what) {
    fprintf(stderr, "taskflow-guard: %s: %s\n", what, strerror(errno));
    exit(BAD_SETUP);
}

static long long number(const char *text, long long most) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || *end || end == text || value < 0 || value > most) {
        fprintf(stderr, "taskflow-guard: not a number in range: %s\n", text);
        exit(BAD_SETUP);
    }
    return value;
}

static void limit(int resource, const char *value) {
    rlim_t n = (rlim_t)number(value, LLONG_MAX);
    struct rlimit both = {n, n};
    if (setrlimit(resource, &both) != 0)
        fail("setrlimit");
}

/* "G1,G2,..." as gids, in an array of its own (a user may be in many groups). */
static int parse_groups(char *list, gid_t **groups) {
    int count = 1;
    for (char *c = list; *c; c++)
        count += *c == ',';
    *groups = calloc((size_t)count, sizeof(gid_t));
    if (!*groups)
        fail("calloc");
    count = 0;
    for (char *item = strtok(list, ","); item; item = strtok(NULL, ","))
        (*groups)[count++] = (gid_t)number(item, MAX_ID);
    return count;
}

/* Become uid/gid with only these groups; groups and gid first, while still root. */
static void switch_user(long long uid, long long gid, gid_t *groups, int count) {
    if (setgroups((size_t)count, groups) != 0)
        fail("setgroups");
    if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0)
        fail("setgid");
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)
        fail("setuid");
}

/* The task, with every signal back to its default and the mask the guard started with.
 * posix_spawn uses vfork: no copy of the guard's pages, and an exec that fails is told. */
static pid_t start_task(char **argv, const sigset_t *mask) {
    posix_spawnattr_t attr;
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t task;
    int error = posix_spawnp(&task, argv[0], NULL, &attr, argv, environ);
    if (error) {
        fprintf(stderr, "taskflow-guard: %s: %s\n", argv[0], strerror(error));
        exit(127);
    }
    return task;
}

static int wait_for(pid_t task) {
    int status;
    while (waitpid(task, &status, 0) < 0)
        if (errno != EINTR)
            fail("waitpid");
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    /* Until the task runs, a SIGTERM waits (blocked) and is read with sigpending. */
    sigset_t old_mask, term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old_mask);

    long long uid = -1, gid = -1;
    gid_t *groups = NULL;
    int group_count = -1, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *value = strchr(argv[i], '=');
        if (!value) {
            fprintf(stderr, "taskflow-guard: unknown option %s\n", argv[i]);
            return BAD_SETUP;
        }
        *value++ = '\0';
        if (!strcmp(argv[i], "--cpu")) limit(RLIMIT_CPU, value);
        else if (!strcmp(argv[i], "--as")) limit(RLIMIT_AS, value);
        else if (!strcmp(argv[i], "--nofile")) limit(RLIMIT_NOFILE, value);
        else if (!strcmp(argv[i], "--nproc")) limit(RLIMIT_NPROC, value);
        else if (!strcmp(argv[i], "--uid")) uid = number(value, MAX_ID);
        else if (!strcmp(argv[i], "--gid")) gid = number(value, MAX_ID);
        else if (!strcmp(argv[i], "--groups")) group_count = parse_groups(value, &groups);
        else {
            fprintf(stderr, "taskflow-guard: unknown option %s\n", argv[i]);
            return BAD_SETUP;
        }
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: taskflow-guard [OPTION=N]... -- AGENT_PID ARGV...\n");
        return BAD_SETUP;
    }
    if ((uid < 0) != (gid < 0) || (uid < 0) != (group_count < 0)) {
        fprintf(stderr, "taskflow-guard: --uid, --gid and --groups go together\n");
        return BAD_SETUP;
    }
    pid_t agent = (pid_t)number(argv[i + 1], INT_MAX);
    char **task_argv = argv + i + 2;

    struct sigaction hup = {.sa_handler = on_hup}, stop = {.sa_handler = on_term};
    sigaction(SIGHUP, &hup, NULL);
    sigaction(SIGTERM, &stop, NULL);

    if (uid >= 0)
        switch_user(uid, gid, groups, group_count);
    /* After the user switch: changing credentials clears the death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGHUP) != 0)
        fail("prctl");
    if (getppid() != agent)
        return 129; /* the agent died before the signal was set */

    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGTERM))
        return 143; /* stopped before it started */

    pid_t task = start_task(task_argv, &old_mask);
    /* A SIGTERM sent to the group while the task was starting may have reached only this
     * guard: pass it on. (If it reached the task too, the task gets it twice.) */
    sigpending(&pending);
    if (sigismember(&pending, SIGTERM))
        kill(task, SIGTERM);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return wait_for(task);
}
