/*
 * edgemux kernel relay: one epoll loop thread per worker that moves the bytes
 * of established relays with splice(2), socket -> pipe -> socket, one pipe per
 * direction, without the bytes ever entering JavaScript.
 *
 * Compiled at run time by bun:ffi's `cc` (TinyCC). It includes no header on
 * purpose: an edge host may lack libc headers (Debian libc6-dev), so the few
 * libc functions, constants and structs are declared here. The constants are
 * Linux's generic ABI values, the same on x86_64 and aarch64.
 *
 * Threads and ownership:
 * - The JS thread calls kr_prepare (dup both sockets, take two pipes), then
 *   closes Bun's own sockets, then kr_start; kr_kill asks for a close;
 *   kr_poll takes finished relays. These touch only the command and
 *   completion rings, under one mutex, and a slot that the loop does not own.
 * - The loop thread owns every started slot until it finishes it: it alone
 *   reads, writes, shuts down and closes the descriptors.
 * - Completions wake JS through a socketpair that Bun watches as a socket
 *   (one byte when the ring goes from empty to non-empty): no callback into
 *   JavaScript from this thread, no busy polling.
 *
 * Bounds: every slot, pipe and ring is allocated once in kr_init; nothing is
 * allocated per relay or per chunk. A pump moves at most PUMP_BUDGET bytes per
 * direction before the slot goes to the back of the ready queue, so one bulk
 * relay cannot starve the others. Pipes are the kernel's default size; only
 * bulk directions get a big one, within a byte budget (see big_size).
 *
 * Syscalls: readiness per socket comes from the epoll edges (rd/wr flags), so
 * a turn splices only where bytes can move and an idle direction costs none;
 * measured with strace on a 1-stream download, EAGAIN results fell from ~1 in
 * 7 splices to ~1 in 500.
 */

typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned int u32;
typedef unsigned long long u64;

extern int *__errno_location(void);
extern void *calloc(size_t n, size_t size);
extern void free(void *p);
extern int close(int fd);
extern ssize_t read(int fd, void *buf, size_t n);
extern ssize_t write(int fd, const void *buf, size_t n);
extern int fcntl(int fd, int cmd, ...);
extern int pipe2(int fds[2], int flags);
extern int shutdown(int fd, int how);
extern int getsockopt(int fd, int level, int name, void *value, u32 *len);
extern ssize_t splice(int fd_in, long *off_in, int fd_out, long *off_out, size_t len, unsigned flags);
extern int epoll_create1(int flags);
extern int epoll_ctl(int epfd, int op, int fd, void *event);
extern int epoll_wait(int epfd, void *events, int max, int timeout);
extern int eventfd(unsigned initval, int flags);
extern int socketpair(int domain, int type, int protocol, int fds[2]);
extern int pthread_create(u64 *thread, void *attr, void *(*fn)(void *), void *arg);
extern int pthread_join(u64 thread, void **ret);
extern int pthread_mutex_init(void *m, void *attr);
extern int pthread_mutex_lock(void *m);
extern int pthread_mutex_unlock(void *m);

#define EINTR 4
#define EAGAIN 11
#define ENOMEM 12
#define EBUSY 16
#define EINVAL 22
#define EMFILE 24
#define O_NONBLOCK 04000
#define O_CLOEXEC 02000000
#define F_DUPFD_CLOEXEC 1030
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#define SHUT_WR 1
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOL_SOCKET 1
#define SO_ERROR 4
#define SPLICE_F_MOVE 1
#define SPLICE_F_NONBLOCK 2
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLLIN 0x001
#define EPOLLOUT 0x004
#define EPOLLERR 0x008
#define EPOLLHUP 0x010
#define EPOLLRDHUP 0x2000
#define EPOLLET 0x80000000u

/* struct epoll_event is packed on x86_64 only. */
#ifdef __x86_64__
struct ev { u32 events; u64 data; } __attribute__((packed));
#else
struct ev { u32 events; u64 data; };
#endif

#define MAX_EVENTS 128
/* Bytes one pump moves per direction before yielding to other relays. */
#define PUMP_BUDGET (1 << 20)
/* Largest request per splice; the kernel bounds it by the pipe's room. */
#define SPLICE_LEN (1 << 20)
#define WAKE_TOKEN 0xffffffffffffffffull

#define FREE 0
#define PREPARED 1
#define ACTIVE 2

#define CMD_START 1
#define CMD_KILL 2

struct dir {
  int pr, pw;   /* the pipe: read end, write end */
  long inpipe;  /* bytes in the pipe */
  int eof;      /* the reading side sent FIN */
  int shut;     /* FIN passed on (shutdown(SHUT_WR) of the writing side) */
  int big;      /* the pipe was enlarged to big_size (counted in big_used) */
};

struct slot {
  int state;
  u32 gen;
  int fd[2];      /* 0 = client, 1 = upstream */
  struct dir d[2]; /* d[0]: client -> upstream, d[1]: upstream -> client */
  /*
   * Readiness per socket, from the edge-triggered events: rd[k] "fd[k] may
   * have bytes or a FIN", wr[k] "fd[k] may take bytes". Set by an event (and
   * at start), cleared only by an EAGAIN that proves it, so a splice is tried
   * only where it can move something and no edge is ever lost.
   */
  char rd[2], wr[2];
  int err;        /* errno of the first failure, 0 when none */
  int err_side;   /* which socket failed: 0 client, 1 upstream, -1 none */
  int queued;     /* in the ready queue */
};

struct cmd { int op; int slot; u32 gen; };
/* Completion record as JS reads it: 6 doubles. */
#define DONE_FIELDS 6

static int nslots, max_pipes;
/*
 * Pipes are made at the kernel's default size (64 KiB); a direction whose
 * read fills that is bulk, and its pipe grows to big_size (1 MiB: ~1.4x the
 * bytes per CPU-second of a 256 KiB pipe) while the enlarged pipes stay
 * within big_budget bytes. The budget keeps the worker well inside the
 * user's pipe quota (fs.pipe-user-pages-soft: past it, every new pipe of the
 * user gets 8 KiB). A refused enlargement (EPERM: quota) stops them until
 * every enlarged pipe is back. Loop thread only.
 */
static long big_size, big_budget, big_limit, big_used;
/* The size of a new pipe (64 KiB with 4 KiB pages), read in kr_init; enlarged pipes shrink back to it. */
static long pipe_default;
static struct slot *slots;
/* Per slot, bytes moved: [2*i] client->upstream, [2*i+1] upstream->client. JS reads these live. */
static double *bytes;
static int epfd = -1, wakefd = -1, notifyfd = -1;
static u64 thread;
static int running;
static volatile int stopping;
static unsigned char mu[64] __attribute__((aligned(16)));
static struct cmd *cmds; static int cmd_head, cmd_count, cmd_cap;
static double *dones; static int done_head, done_count, done_cap;
static int *pool; static int pool_count, pipes_open;  /* pool holds pipe pairs: pool[2k], pool[2k+1] */
static int *ready; static int ready_head, ready_count;  /* slots whose pump ran out of budget */

static int err_no(void) { return *__errno_location(); }

/* ---- pipes (JS thread in kr_prepare, loop thread in finish; under the mutex) ---- */

static int take_pipe(int p[2]) {
  if (pool_count > 0) {
    pool_count--;
    p[0] = pool[2 * pool_count];
    p[1] = pool[2 * pool_count + 1];
    return 0;
  }
  if (pipes_open >= max_pipes) return -EBUSY;
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -err_no();
  pipes_open++;
  return 0;
}

/* An empty pipe goes back to the pool; one still holding bytes is closed (they are dropped). */
static void give_pipe(int pr, int pw, long inpipe) {
  if (inpipe == 0 && pr >= 0 && pool_count < max_pipes) {
    pool[2 * pool_count] = pr;
    pool[2 * pool_count + 1] = pw;
    pool_count++;
    return;
  }
  close(pr);
  close(pw);
  pipes_open--;
}

/* ---- completion ring (loop thread pushes, JS pops) ---- */

static void push_done(int i, struct slot *s) {
  int wake = 0;
  pthread_mutex_lock(mu);
  if (done_count < done_cap) { /* cannot be full: one record per started relay, done_cap = nslots */
    double *r = dones + DONE_FIELDS * ((done_head + done_count) % done_cap);
    r[0] = i;
    r[1] = s->gen;
    r[2] = s->err;
    r[3] = s->err_side;
    r[4] = bytes[2 * i];
    r[5] = bytes[2 * i + 1];
    wake = done_count == 0;
    done_count++;
  }
  pthread_mutex_unlock(mu);
  if (wake) {
    unsigned char b = 1;
    write(notifyfd, &b, 1); /* EAGAIN: bytes already wait unread, so JS will poll anyway */
  }
}

/* Loop thread: an enlarged pipe leaves its slot; back to the default size before the pool, else closed. */
static void shrink_pipe(struct dir *d) {
  if (!d->big) return;
  d->big = 0;
  big_used -= big_size;
  if (big_used == 0) big_limit = big_budget;
  if (d->inpipe == 0 && fcntl(d->pw, F_SETPIPE_SZ, (int)pipe_default) < 0) {
    close(d->pr);
    close(d->pw);
    d->pr = d->pw = -1; /* give_pipe counts it closed */
  }
}

/* Loop thread: a direction that filled its default pipe gets a big one, within the budget. */
static void grow_pipe(struct dir *d) {
  if (big_size == 0 || big_used + big_size > big_limit) return;
  if (fcntl(d->pw, F_SETPIPE_SZ, (int)big_size) < 0) {
    big_limit = big_used; /* refused (quota): no more until every enlarged pipe is back */
    return;
  }
  d->big = 1;
  big_used += big_size;
}

static void finish(int i) {
  struct slot *s = &slots[i];
  int k;
  for (k = 0; k < 2; k++) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd[k], 0);
    close(s->fd[k]);
    shrink_pipe(&s->d[k]);
  }
  pthread_mutex_lock(mu);
  for (k = 0; k < 2; k++) {
    if (s->d[k].pr < 0) pipes_open--;
    else give_pipe(s->d[k].pr, s->d[k].pw, s->d[k].inpipe);
  }
  pthread_mutex_unlock(mu);
  s->state = FREE;
  push_done(i, s);
}

static void fail(struct slot *s, int side, int e) {
  if (s->err == 0) {
    s->err = e;
    s->err_side = side;
  }
}

/*
 * Moves what it can in direction k (socket fd[k] -> pipe -> socket fd[1-k])
 * while the readiness flags allow, the reading side has not ended, and the
 * budget lasts. Returns 1 when the budget ran out (more may be ready), 0
 * otherwise, -1 on a failure (recorded in the slot).
 *
 * A splice is made only where it can move bytes: the pipe is emptied into the
 * writer first, and the reader is read only into an empty pipe. So an EAGAIN
 * from the reader always means its socket is empty (never "the pipe is
 * full"), and a full writer stops the reads: the bytes wait in the reading
 * socket's buffer, which is the backpressure, instead of trickling into a
 * pipe nobody can drain.
 */
static int move(int i, int k) {
  struct slot *s = &slots[i];
  struct dir *d = &s->d[k];
  int in = s->fd[k], out = s->fd[1 - k];
  long moved = 0;
  ssize_t n;
  for (;;) {
    if (d->inpipe > 0) {
      if (!s->wr[1 - k]) break;
      n = splice(d->pr, 0, out, 0, (size_t)d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->inpipe -= n;
        bytes[2 * i + k] += (double)n;
        moved += n;
        if (moved >= PUMP_BUDGET) return 1;
        continue; /* the rest of the pipe, or a read into the now empty pipe */
      }
      if (n < 0) {
        int e = err_no();
        if (e == EINTR) continue;
        if (e != EAGAIN) { fail(s, 1 - k, e); return -1; }
      }
      s->wr[1 - k] = 0; /* the writer is full: its EPOLLOUT edge resumes this direction */
      break;
    }
    if (d->eof || !s->rd[k]) break;
    n = splice(in, 0, d->pw, 0, SPLICE_LEN, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->inpipe += n;
      if (n >= pipe_default && !d->big) grow_pipe(d);
    } else if (n == 0) {
      d->eof = 1;
    } else {
      int e = err_no();
      if (e == EINTR) continue;
      /* anything but EAGAIN is the reading socket's failure */
      if (e != EAGAIN) { fail(s, k, e); return -1; }
      s->rd[k] = 0; /* the pipe is empty, so the socket is: its EPOLLIN edge resumes */
      break;
    }
  }
  if (d->eof && d->inpipe == 0 && !d->shut) {
    shutdown(out, SHUT_WR); /* ENOTCONN when the peer is gone: the other direction reports that */
    d->shut = 1;
  }
  return 0;
}

/* Best effort after a failure: hand the surviving side what is already in its pipe. */
static void flush_to(int i, int k) {
  struct slot *s = &slots[i];
  struct dir *d = &s->d[k];
  if (d->inpipe > 0) {
    ssize_t n = splice(d->pr, 0, s->fd[1 - k], 0, (size_t)d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->inpipe -= n;
      bytes[2 * i + k] += (double)n;
    }
  }
}

static void enqueue_ready(int i) {
  struct slot *s = &slots[i];
  if (s->queued) return;
  s->queued = 1;
  ready[(ready_head + ready_count) % nslots] = i; /* at most nslots entries: one per slot */
  ready_count++;
}

static void pump(int i) {
  struct slot *s = &slots[i];
  int a, b;
  if (s->state != ACTIVE) return;
  a = move(i, 0);
  b = a < 0 ? 0 : move(i, 1);
  if (a < 0 || b < 0) {
    /* the failed socket's peer direction may still hold bytes for the other side */
    if (s->err_side == 0) flush_to(i, 0); else flush_to(i, 1);
    finish(i);
    return;
  }
  if (s->d[0].shut && s->d[1].shut) {
    finish(i);
    return;
  }
  if (a > 0 || b > 0) enqueue_ready(i);
}

static void on_event(u64 data, u32 events) {
  int i = (int)((data >> 1) & 0x7fffffff);
  u32 gen = (u32)(data >> 32);
  int side;
  struct slot *s;
  if (i < 0 || i >= nslots) return;
  s = &slots[i];
  if (s->state != ACTIVE || s->gen != gen) return; /* finished earlier in this batch */
  side = (int)(data & 1);
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->rd[side] = 1;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s->wr[side] = 1;
  if (events & EPOLLERR) {
    int e = 0;
    u32 len = sizeof e;
    if (getsockopt(s->fd[side], SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0) {
      fail(s, side, e);
      flush_to(i, side);
      finish(i);
      return;
    }
  }
  pump(i);
}

static void start_slot(int i) {
  struct slot *s = &slots[i];
  int k;
  for (k = 0; k < 2; k++) {
    struct ev e;
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data = ((u64)s->gen << 32) | ((u64)i << 1) | (u64)k;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd[k], &e) < 0) {
      fail(s, k, err_no());
      finish(i);
      return;
    }
  }
  /* Edge-triggered: bytes that arrived before the registration raise no edge, so pump once now. */
  pump(i);
}

static void run_commands(void) {
  u64 n;
  read(wakefd, &n, sizeof n);
  for (;;) {
    struct cmd c;
    pthread_mutex_lock(mu);
    if (cmd_count == 0) {
      pthread_mutex_unlock(mu);
      return;
    }
    c = cmds[cmd_head];
    cmd_head = (cmd_head + 1) % cmd_cap;
    cmd_count--;
    pthread_mutex_unlock(mu);
    if (c.slot < 0 || c.slot >= nslots || slots[c.slot].gen != c.gen) continue;
    if (c.op == CMD_START && slots[c.slot].state == PREPARED) {
      slots[c.slot].state = ACTIVE;
      start_slot(c.slot);
    } else if (c.op == CMD_KILL && slots[c.slot].state == ACTIVE) {
      finish(c.slot); /* err stays 0: JS recorded why it asked */
    }
  }
}

static void *loop(void *arg) {
  static struct ev evs[MAX_EVENTS];
  while (!stopping) {
    int n = epoll_wait(epfd, evs, MAX_EVENTS, ready_count > 0 ? 0 : -1);
    int j, r;
    if (n < 0) {
      if (err_no() == EINTR) continue;
      break;
    }
    for (j = 0; j < n; j++) {
      if (evs[j].data == WAKE_TOKEN) run_commands();
      else on_event(evs[j].data, evs[j].events);
    }
    /* Slots that ran out of budget: one more pump each, in arrival order. */
    for (r = ready_count; r > 0; r--) {
      int i = ready[ready_head];
      ready_head = (ready_head + 1) % nslots;
      ready_count--;
      slots[i].queued = 0;
      pump(i);
    }
  }
  return 0;
}

static int push_cmd(int op, int i, u32 gen) {
  u64 one = 1;
  int ok = 0;
  pthread_mutex_lock(mu);
  if (cmd_count < cmd_cap) {
    struct cmd *c = &cmds[(cmd_head + cmd_count) % cmd_cap];
    c->op = op;
    c->slot = i;
    c->gen = gen;
    cmd_count++;
    ok = 1;
  }
  pthread_mutex_unlock(mu);
  if (!ok) return -EBUSY;
  write(wakefd, &one, sizeof one);
  return 0;
}

/* ---- the JS thread's entry points ---- */

/*
 * Sets up the loop for `n` relays and `pipes` pipes, of which bulk ones grow
 * to `bigsize` bytes (0: never) while their total stays within `budget`
 * bytes, and starts its thread. Returns the descriptor JS watches for
 * completions (its end of a socketpair), or -errno.
 */
int kr_init(int n, int pipes, int bigsize, int budget) {
  struct ev e;
  int pair[2], sz;
  if (running || n <= 0 || n > 1000000 || pipes < 2 || bigsize < 0 || budget < 0) return -EINVAL;
  nslots = n;
  max_pipes = pipes;
  pipe_default = 65536;
  if (pipe2(pair, O_CLOEXEC) == 0) {
    sz = fcntl(pair[1], F_GETPIPE_SZ);
    if (sz > 0) pipe_default = sz;
    close(pair[0]);
    close(pair[1]);
  }
  big_size = bigsize > pipe_default ? bigsize : 0;
  big_budget = big_size > 0 ? budget : 0;
  big_limit = big_budget;
  big_used = 0;
  cmd_cap = 2 * n + 16;
  done_cap = n;
  slots = calloc((size_t)n, sizeof(struct slot));
  bytes = calloc((size_t)(2 * n), sizeof(double));
  cmds = calloc((size_t)cmd_cap, sizeof(struct cmd));
  dones = calloc((size_t)(DONE_FIELDS * done_cap), sizeof(double));
  pool = calloc((size_t)(2 * pipes), sizeof(int));
  ready = calloc((size_t)n, sizeof(int));
  if (!slots || !bytes || !cmds || !dones || !pool || !ready) return -ENOMEM;
  pthread_mutex_init(mu, 0);
  epfd = epoll_create1(O_CLOEXEC);
  if (epfd < 0) return -err_no();
  wakefd = eventfd(0, O_NONBLOCK | O_CLOEXEC);
  if (wakefd < 0) return -err_no();
  e.events = EPOLLIN;
  e.data = WAKE_TOKEN;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &e) < 0) return -err_no();
  if (socketpair(AF_UNIX, SOCK_STREAM | O_NONBLOCK | O_CLOEXEC, 0, pair) < 0) return -err_no();
  notifyfd = pair[1];
  if (pthread_create(&thread, 0, loop, 0) != 0) {
    close(pair[0]);
    close(pair[1]);
    return -EAGAIN;
  }
  running = 1;
  return pair[0];
}

/* Live byte counters, 2 doubles per slot (see `bytes`). */
double *kr_bytes(void) { return bytes; }

/*
 * Duplicates both sockets and takes two pipes for slot `i` (which JS knows is
 * free). Until kr_start nothing reads the copies, so JS closes its own
 * sockets in between. Returns 0 or -errno (pool empty: -EBUSY).
 */
int kr_prepare(int i, u32 gen, int client, int upstream) {
  struct slot *s;
  int p0[2], p1[2], r, a, b;
  if (!running || i < 0 || i >= nslots) return -EINVAL;
  s = &slots[i];
  if (s->state != FREE) return -EBUSY;
  pthread_mutex_lock(mu);
  r = take_pipe(p0);
  if (r == 0) {
    r = take_pipe(p1);
    if (r != 0) give_pipe(p0[0], p0[1], 0);
  }
  pthread_mutex_unlock(mu);
  if (r != 0) return r;
  a = fcntl(client, F_DUPFD_CLOEXEC, 0);
  b = a < 0 ? -1 : fcntl(upstream, F_DUPFD_CLOEXEC, 0);
  if (a < 0 || b < 0) {
    r = -err_no();
    if (a >= 0) close(a);
    pthread_mutex_lock(mu);
    give_pipe(p0[0], p0[1], 0);
    give_pipe(p1[0], p1[1], 0);
    pthread_mutex_unlock(mu);
    return r < 0 ? r : -EMFILE;
  }
  s->gen = gen;
  s->fd[0] = a;
  s->fd[1] = b;
  s->d[0].pr = p0[0]; s->d[0].pw = p0[1]; s->d[0].inpipe = 0; s->d[0].eof = 0; s->d[0].shut = 0; s->d[0].big = 0;
  s->d[1].pr = p1[0]; s->d[1].pw = p1[1]; s->d[1].inpipe = 0; s->d[1].eof = 0; s->d[1].shut = 0; s->d[1].big = 0;
  s->rd[0] = s->rd[1] = s->wr[0] = s->wr[1] = 1; /* unknown until proven otherwise */
  s->err = 0;
  s->err_side = -1; /* `queued` belongs to the loop thread: the slot may still sit in its ready queue */
  bytes[2 * i] = 0;
  bytes[2 * i + 1] = 0;
  s->state = PREPARED;
  return 0;
}

/* Hands a prepared slot to the loop (the mutex orders the writes above before the loop reads them). */
int kr_start(int i, u32 gen) {
  if (!running || i < 0 || i >= nslots || slots[i].state != PREPARED || slots[i].gen != gen) return -EINVAL;
  return push_cmd(CMD_START, i, gen);
}

/* Asks the loop to close slot `i` now (idle timeout, drain deadline); its completion follows. */
int kr_kill(int i, u32 gen) {
  if (!running || i < 0 || i >= nslots) return -EINVAL;
  return push_cmd(CMD_KILL, i, gen);
}

/* Copies up to `max` completion records (DONE_FIELDS doubles each) into `out`; returns how many. */
int kr_poll(double *out, int max) {
  int n = 0, f;
  pthread_mutex_lock(mu);
  while (n < max && done_count > 0) {
    double *r = dones + DONE_FIELDS * done_head;
    for (f = 0; f < DONE_FIELDS; f++) out[DONE_FIELDS * n + f] = r[f];
    done_head = (done_head + 1) % done_cap;
    done_count--;
    n++;
  }
  pthread_mutex_unlock(mu);
  return n;
}

/* Pipes open now (in use and pooled), for /status and the leak tests. */
int kr_pipes_open(void) {
  int n;
  pthread_mutex_lock(mu);
  n = pipes_open;
  pthread_mutex_unlock(mu);
  return n;
}

/* Stops the loop (worker exit) and closes every descriptor it holds. */
int kr_stop(void) {
  u64 one = 1;
  int i, k;
  if (!running) return 0;
  stopping = 1;
  write(wakefd, &one, sizeof one);
  pthread_join(thread, 0);
  running = 0;
  for (i = 0; i < nslots; i++) {
    if (slots[i].state == FREE) continue;
    for (k = 0; k < 2; k++) {
      close(slots[i].fd[k]);
      close(slots[i].d[k].pr);
      close(slots[i].d[k].pw);
    }
    slots[i].state = FREE;
  }
  for (i = 0; i < pool_count; i++) {
    close(pool[2 * i]);
    close(pool[2 * i + 1]);
  }
  pool_count = 0;
  pipes_open = 0;
  big_used = 0;
  close(epfd);
  close(wakefd);
  close(notifyfd); /* JS closes its own end */
  return 0;
}
