/*
 * taskflow-guard: start one task so that it dies with its agent, as its own user, and
 * (phase 5) in a sandbox of its own. See executors.py and sandbox.py.
 *
 *   taskflow-guard [--cpu=N] [--as=N] [--nofile=N] [--nproc=N] [--fsize=N]
 *                  [--uid=N --gid=N --groups=G1,G2,...] [--cgroup=DIR]...
 *                  [--sandbox=none|host [--tmp-size=N] [--writable=DIR]...]
 *                  -- AGENT_PID ARGV...
 *
 * The agent starts it as the leader of a new session (the task's process group). It
 * joins the task's cgroups (each DIR's cgroup.procs) and applies the task's resource
 * limits. Without --sandbox it then becomes the task's user with that user's groups
 * only, asks the kernel for SIGHUP when the agent dies, runs ARGV in a child and waits:
 *
 *   - SIGHUP (the agent died): SIGKILL to the whole group, grandchildren included;
 *   - SIGTERM (a timeout or a cancel, sent to the whole group): the task gets it too,
 *     the guard keeps waiting, so the task still has its grace period;
 *   - the task's end: the guard exits with its code, 128+N for a signal N.
 *
 * With --sandbox the guard also makes new mount, PID and IPC namespaces, and a network
 * namespace of its own (only a loopback, up) unless it is --sandbox=host. Its one child
 * is the namespace's init (PID 1): it mounts a read-only, nosuid view of the whole tree,
 * a private /tmp and /dev/shm (tmpfs of --tmp-size bytes each), a /proc of the new PID
 * namespace, and binds each --writable=DIR (opened without following any symlink)
 * read-write at its own path; then it becomes the task's user, sets no_new_privs and
 * runs ARGV as PID 2, reaping every orphan until the task ends. When init exits, the
 * kernel kills whatever else runs in the namespace (setsid or not), so nothing the task
 * started survives it. The signals are as above: init passes a SIGTERM that came before
 * the task started on to it, and ignores those sent by the task (a PID 1 gets only the
 * signals it handles).
 *
 * The same steps, in one exec instead of five (prlimit, setpriv, a shell, env, then the
 * task), or than bubblewrap plus those: the shell version cost about 4 ms of CPU per
 * task, this one about 0.3 without the sandbox; docs/security.md has the sandbox's cost.
 * Exit codes of its own: 129 when the agent was gone before the death signal was set
 * (the task never starts), 143 after a SIGTERM that came before the task started, 125
 * for a bad option or a limit, user, cgroup or namespace it cannot apply, 127 when ARGV
 * cannot run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD_SETUP 125
#define MAX_ID 0xfffffffeLL /* (uid_t)-1 means "leave as it is" to setresuid: never that */
#define MAX_LIST 16         /* cgroups, writable folders */

/* The new mount API (Linux 5.2 to 5.12); libc headers may not have it, the kernel does. */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04

struct mount_attr_ { uint64_t attr_set, attr_clr, propagation, userns_fd; };
struct open_how_ { uint64_t flags, mode, resolve; };

enum network { NO_SANDBOX, NO_NETWORK, HOST_NETWORK };

struct plan {
    long long uid, gid;
    gid_t *groups;
    int group_count;
    const char *cgroups[MAX_LIST];
    int cgroup_count;
    enum network sandbox;
    long long tmp_size;
    const char *writable[MAX_LIST];
    int writable_count;
};

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

static void refuse(const char *what, const char *value) {
    fprintf(stderr, "taskflow-guard: %s%s\n", what, value);
    exit(BAD_SETUP);
}

static long long number(const char *text, long long most) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || *end || end == text || value < 0 || value > most)
        refuse("not a number in range: ", text);
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

static void add(const char **list, int *count, const char *value) {
    if (*count == MAX_LIST || value[0] != '/')
        refuse("too many, or not an absolute path: ", value);
    list[(*count)++] = value;
}

/* One --name=value option into the plan; limits are applied at once. */
static void option(struct plan *p, char *arg) {
    char *value = strchr(arg, '=');
    if (!value)
        refuse("unknown option ", arg);
    *value++ = '\0';
    if (!strcmp(arg, "--cpu")) limit(RLIMIT_CPU, value);
    else if (!strcmp(arg, "--as")) limit(RLIMIT_AS, value);
    else if (!strcmp(arg, "--nofile")) limit(RLIMIT_NOFILE, value);
    else if (!strcmp(arg, "--nproc")) limit(RLIMIT_NPROC, value);
    else if (!strcmp(arg, "--fsize")) limit(RLIMIT_FSIZE, value);
    else if (!strcmp(arg, "--uid")) p->uid = number(value, MAX_ID);
    else if (!strcmp(arg, "--gid")) p->gid = number(value, MAX_ID);
    else if (!strcmp(arg, "--groups")) p->group_count = parse_groups(value, &p->groups);
    else if (!strcmp(arg, "--cgroup")) add(p->cgroups, &p->cgroup_count, value);
    else if (!strcmp(arg, "--writable")) add(p->writable, &p->writable_count, value);
    else if (!strcmp(arg, "--tmp-size")) p->tmp_size = number(value, LLONG_MAX);
    else if (!strcmp(arg, "--sandbox") && !strcmp(value, "none")) p->sandbox = NO_NETWORK;
    else if (!strcmp(arg, "--sandbox") && !strcmp(value, "host")) p->sandbox = HOST_NETWORK;
    else {
        value[-1] = '=';
        refuse("unknown option ", arg);
    }
}

/* The task and everything it starts are counted and limited in these cgroups. */
static void join_cgroups(const struct plan *p) {
    char path[PATH_MAX];
    for (int i = 0; i < p->cgroup_count; i++) {
        snprintf(path, sizeof path, "%s/cgroup.procs", p->cgroups[i]);
        int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) /* "0": the writer itself */
            fail(path);
        close(fd);
    }
}

/* Become uid/gid with only these groups; groups and gid first, while still root. */
static void switch_user(const struct plan *p) {
    if (p->uid < 0)
        return;
    if (setgroups((size_t)p->group_count, p->groups) != 0)
        fail("setgroups");
    if (setresgid((gid_t)p->gid, (gid_t)p->gid, (gid_t)p->gid) != 0)
        fail("setgid");
    if (setresuid((uid_t)p->uid, (uid_t)p->uid, (uid_t)p->uid) != 0)
        fail("setuid");
}

/* A directory, resolved without following a single symlink (a task may own its parent). */
static int open_dir(const char *path) {
    struct open_how_ how = {O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
                            RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd < 0)
        fail(path);
    return fd;
}

/* A detached copy of the mounts at --writable=DIR, nosuid and nodev, made while DIR is
 * still the host's (before /tmp is replaced and the rest made read-only). */
static int writable_tree(const char *path) {
    int dir = open_dir(path);
    int tree = (int)syscall(SYS_open_tree, dir, "",
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0)
        fail("open_tree");
    struct mount_attr_ attr = {MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr))
        fail("mount_setattr");
    close(dir);
    return tree;
}

/* Where DIR goes in the new view: under the new /tmp it does not exist yet. */
static void make_dirs(const char *path) {
    char part[PATH_MAX];
    snprintf(part, sizeof part, "%s", path);
    for (char *slash = strchr(part + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        mkdir(part, 0755); /* EEXIST, or EROFS outside /tmp: open_dir says what is wrong */
        if (!slash)
            return;
        *slash = '/';
    }
}

static void mount_tmpfs(const char *where, long long size, int optional) {
    char options[64];
    snprintf(options, sizeof options, "size=%lld,mode=1777", size);
    if (mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV, size ? options : "mode=1777")) {
        if (optional && errno == ENOENT)
            return;
        fail(where);
    }
}

/* The task's view: everything read-only and nosuid, but its own /tmp, /dev/shm, /proc
 * and the writable folders. Nothing of it reaches the host's namespace (all private). */
static void build_view(const struct plan *p) {
    int trees[MAX_LIST];
    for (int i = 0; i < p->writable_count; i++)
        trees[i] = writable_tree(p->writable[i]);
    struct mount_attr_ locked = {MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &locked, sizeof locked))
        fail("read-only view of /");
    mount_tmpfs("/tmp", p->tmp_size, 0);
    mount_tmpfs("/dev/shm", p->tmp_size, 1);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        fail("/proc");
    for (int i = 0; i < p->writable_count; i++) {
        make_dirs(p->writable[i]);
        int target = open_dir(p->writable[i]);
        if (syscall(SYS_move_mount, trees[i], "", target, "",
                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
            fail(p->writable[i]);
        close(target);
        close(trees[i]);
    }
    if (chdir("/tmp"))
        fail("chdir /tmp");
}

/* A network namespace starts with its loopback down: up, so a task may talk to itself. */
static void loopback_up(void) {
    struct ifreq lo = {0};
    strcpy(lo.ifr_name, "lo");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &lo))
        fail("loopback");
    lo.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &lo))
        fail("loopback up");
    close(s);
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

static int code_of(int status) {
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Wait for `child`; with `reap_all` (an init), reap every orphan that comes meanwhile. */
static int wait_for(pid_t child, int reap_all) {
    int status;
    for (;;) {
        pid_t pid = waitpid(reap_all ? -1 : child, &status, 0);
        if (pid == child)
            return code_of(status);
        if (pid < 0 && errno != EINTR)
            fail("waitpid");
    }
}

static int stop_pending(void) {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGTERM);
}

/* Start the task, passing on a SIGTERM sent to the group while it was starting, which
 * may have reached only this process (if it reached the task too, it gets it twice). */
static int run_task(char **argv, const sigset_t *mask, int reap_all) {
    if (stop_pending())
        return 143; /* stopped before it started */
    pid_t task = start_task(argv, mask);
    if (stop_pending())
        kill(task, SIGTERM);
    sigprocmask(SIG_SETMASK, mask, NULL);
    return wait_for(task, reap_all);
}

/* PID 1 of the task's namespaces: the view, the user, then the task as PID 2. */
static int run_init(const struct plan *p, char **argv, const sigset_t *mask) {
    signal(SIGHUP, SIG_DFL); /* the outer guard answers the agent's death; a task's HUP does nothing */
    build_view(p);
    if (p->sandbox == NO_NETWORK)
        loopback_up();
    switch_user(p);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_PDEATHSIG, SIGKILL))
        fail("prctl");
    return run_task(argv, mask, 1);
}

/* New namespaces for the next child; this guard stays outside, in the agent's PID space. */
static pid_t start_init(const struct plan *p, char **argv, const sigset_t *mask) {
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC;
    if (p->sandbox == NO_NETWORK)
        flags |= CLONE_NEWNET;
    if (unshare(flags))
        fail("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        fail("private mounts");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0)
        exit(run_init(p, argv, mask));
    return child;
}

int main(int argc, char **argv) {
    /* Until the task runs, a SIGTERM waits (blocked) and is read with sigpending. */
    sigset_t old_mask, term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old_mask);

    struct plan p = {.uid = -1, .gid = -1, .group_count = -1, .sandbox = NO_SANDBOX};
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++)
        option(&p, argv[i]);
    if (argc - i < 3)
        refuse("usage: taskflow-guard [OPTION=N]... -- AGENT_PID ARGV...", "");
    if ((p.uid < 0) != (p.gid < 0) || (p.uid < 0) != (p.group_count < 0))
        refuse("--uid, --gid and --groups go together", "");
    if (p.sandbox == NO_SANDBOX && (p.writable_count || p.tmp_size))
        refuse("--writable and --tmp-size need --sandbox", "");
    pid_t agent = (pid_t)number(argv[i + 1], INT_MAX);
    char **task_argv = argv + i + 2;

    struct sigaction hup = {.sa_handler = on_hup}, stop = {.sa_handler = on_term};
    sigaction(SIGHUP, &hup, NULL);
    sigaction(SIGTERM, &stop, NULL);

    join_cgroups(&p);
    if (p.sandbox == NO_SANDBOX)
        switch_user(&p);
    /* After the user switch: changing credentials clears the death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGHUP) != 0)
        fail("prctl");
    if (getppid() != agent)
        return 129; /* the agent died before the signal was set */
    if (p.sandbox == NO_SANDBOX)
        return run_task(task_argv, &old_mask, 0);

    if (stop_pending())
        return 143;
    pid_t init = start_init(&p, task_argv, &old_mask);
    if (stop_pending())
        kill(init, SIGTERM); /* init passes it on, or never starts the task */
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return wait_for(init, 0);
}
