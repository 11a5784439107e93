/*
 * keynode native client: `keynode secrets get` and `keynode secrets set` (value on stdin)
 * through a running agent, with the Node fast path's output, errors and exit codes
 * (src/cli/fast.ts). Node's own start costs 20-25 ms; this costs ~1 ms.
 *
 * Anything it does not handle exactly as Node would -- another command or option, a path it
 * does not validate itself, no agent, no live session, a session due for refresh, a sign-in --
 * it hands to the Node CLI (exec) before any request that changes something is sent. A `set`
 * is sent at most once: after it, every outcome is reported here, as Node reports it.
 *
 * Wire format: one JSON document per line (docs/api.md, src/ipc/protocol.ts). Replies are read
 * with the Node client's bound (4 x AGENT_MAX_FRAME_BYTES); every reply is parsed by a strict
 * JSON parser; a reply it cannot use is an error with a stable code, never a crash.
 * Decisions and limits: docs/decisions/0007-native-client.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <pwd.h>

#include "generated.h" /* exit codes, hints and limits, generated from the TypeScript source */

/* ---------- memory that may hold secrets: zeroed before it is freed ---------- */

static void wipe(void *p, size_t n) {
  if (p == NULL || n == 0) return;
  volatile unsigned char *v = (volatile unsigned char *)p;
  while (n--) *v++ = 0;
}

typedef struct {
  unsigned char *data;
  size_t len, cap;
} buf_t;

static void buf_free(buf_t *b) {
  wipe(b->data, b->cap);
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Grows by copying into fresh memory and wiping the old, so no secret is left behind by realloc. */
static int buf_reserve(buf_t *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return -1;
  size_t need = b->len + extra;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *fresh = malloc(cap);
  if (fresh == NULL) return -1;
  if (b->len) memcpy(fresh, b->data, b->len);
  wipe(b->data, b->cap);
  free(b->data);
  b->data = fresh;
  b->cap = cap;
  return 0;
}

static void oom(void) {
  static const char m[] = "keynode: internal error: out of memory (ERR_INTERNAL)\n";
  (void)!write(2, m, sizeof m - 1);
  _exit(EXIT_ERR_INTERNAL);
}

static void buf_add(buf_t *b, const void *p, size_t n) {
  if (buf_reserve(b, n) != 0) oom();
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }
static void buf_byte(buf_t *b, unsigned char c) { buf_add(b, &c, 1); }

/* ---------- process state ---------- */

static char **g_argv;
static int g_argc;
static int g_json;
static int g_sock = -1;
static buf_t g_value, g_b64, g_request, g_frames, g_out, g_decoded;

static void cleanup(void) {
  buf_free(&g_value);
  buf_free(&g_b64);
  buf_free(&g_request);
  buf_free(&g_frames);
  buf_free(&g_out);
  buf_free(&g_decoded);
  if (g_sock >= 0) close(g_sock);
  g_sock = -1;
}

/* Hand the invocation to the Node CLI: nothing has been printed and nothing changed. */
static void fallback(void) {
  cleanup();
  const char *override = getenv("KEYNODE_NATIVE_FALLBACK"); /* tests: a stand-in for the Node CLI */
  char cli[PATH_MAX];
  char **args = calloc((size_t)g_argc + 3, sizeof *args);
  if (args == NULL) oom();
  int n = 0;
  if (override != NULL && override[0] != '\0') {
    args[n++] = (char *)override;
  } else {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
      if (realpath(g_argv[0], self) == NULL) len = -1;
      else len = (ssize_t)strlen(self);
    }
    if (len <= 0) {
      static const char m[] = "keynode: internal error: cannot find the keynode CLI next to the native client (ERR_INTERNAL)\n";
      (void)!write(2, m, sizeof m - 1);
      _exit(EXIT_ERR_INTERNAL);
    }
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    /* dist/native/keynode -> dist/cli/keynode.cjs */
    if ((size_t)snprintf(cli, sizeof cli, "%s/../cli/keynode.cjs", self) >= sizeof cli) _exit(EXIT_ERR_INTERNAL);
    args[n++] = "node";
    args[n++] = cli;
  }
  for (int i = 1; i < g_argc; i++) args[n++] = g_argv[i];
  args[n] = NULL;
  signal(SIGPIPE, SIG_DFL); /* ignored only for this process's own writes */
  execvp(args[0], args);
  static const char m[] = "keynode: internal error: cannot run node for the keynode CLI (ERR_INTERNAL)\n";
  (void)!write(2, m, sizeof m - 1);
  _exit(EXIT_ERR_INTERNAL);
}

static int write_all(int fd, const unsigned char *p, size_t n);
static void report_c(const char *code, const char *message);

/*
 * Hand a `set` to Node when its value turns out large, after part of stdin was read: Node's
 * stdin becomes a pipe fed by a child process with the bytes already read (g_value), then the
 * rest of our stdin. Nothing was sent that changes anything; Node streams the value.
 */
static void fallback_with_read(void) {
  int fds[2];
  if (pipe(fds) != 0) { report_c("ERR_INTERNAL", "internal error: cannot hand a large value to the Node CLI"); }
  pid_t child = fork();
  if (child < 0) { report_c("ERR_INTERNAL", "internal error: cannot hand a large value to the Node CLI"); }
  if (child == 0) {
    close(fds[0]);
    if (g_sock >= 0) close(g_sock);
    signal(SIGPIPE, SIG_DFL);
    if (write_all(fds[1], g_value.data, g_value.len) != 0) _exit(1);
    wipe(g_value.data, g_value.len);
    static unsigned char copy[65536];
    for (;;) {
      ssize_t got = read(0, copy, sizeof copy);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      if (write_all(fds[1], copy, (size_t)got) != 0) _exit(1);
    }
    wipe(copy, sizeof copy);
    _exit(0);
  }
  close(fds[1]);
  if (dup2(fds[0], 0) < 0) _exit(EXIT_ERR_INTERNAL);
  close(fds[0]);
  wipe(g_value.data, g_value.len);
  g_value.len = 0;
  fallback();
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Write the output and exit; a closed stdout (keynode ... | head) is not an error (as main.ts). */
static void finish(int fd, int code) {
  int failed = write_all(fd, g_out.data ? g_out.data : (const unsigned char *)"", g_out.len);
  cleanup();
  if (failed && errno == EPIPE) code = 0;
  exit(code);
}

/* ---------- UTF-8 / UTF-16 text, as V8 decodes and JSON.stringify writes it ---------- */

/* Decode UTF-8 as WHATWG does (Buffer#toString): each maximal invalid subpart becomes U+FFFD. */
static size_t utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
  unsigned char c = s[i];
  if (c < 0x80) { *cp = c; return 1; }
  uint32_t need, min, v;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { need = 2; v = c & 0x0F; min = 0x800; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { need = 3; v = c & 0x07; min = 0x10000; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else { *cp = 0xFFFD; return 1; }
  (void)min;
  size_t j = i + 1;
  for (uint32_t k = 0; k < need; k++, j++) {
    if (j >= n) { *cp = 0xFFFD; return j - i; }
    unsigned char d = s[j];
    if (d < lo || d > hi) { *cp = 0xFFFD; return j - i; }
    lo = 0x80; hi = 0xBF;
    v = (v << 6) | (d & 0x3F);
  }
  *cp = v;
  return j - i;
}

static int utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t step = utf8_next(s, n, i, &cp);
    if (cp == 0xFFFD && !(step == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && s[i + 2] == 0xBD)) return 0;
    i += step;
  }
  return 1;
}

static void put_utf8(buf_t *b, uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate, as Node writes it */
  if (cp < 0x80) buf_byte(b, (unsigned char)cp);
  else if (cp < 0x800) { buf_byte(b, (unsigned char)(0xC0 | (cp >> 6))); buf_byte(b, (unsigned char)(0x80 | (cp & 0x3F))); }
  else if (cp < 0x10000) { buf_byte(b, (unsigned char)(0xE0 | (cp >> 12))); buf_byte(b, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))); buf_byte(b, (unsigned char)(0x80 | (cp & 0x3F))); }
  else { buf_byte(b, (unsigned char)(0xF0 | (cp >> 18))); buf_byte(b, (unsigned char)(0x80 | ((cp >> 12) & 0x3F))); buf_byte(b, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))); buf_byte(b, (unsigned char)(0x80 | (cp & 0x3F))); }
}

/* A JS string held as UTF-16 code units (it may hold lone surrogates, as JSON.parse allows). */
typedef struct {
  uint16_t *u;
  size_t len, cap;
} text_t;

static void text_add(text_t *t, uint16_t unit) {
  if (t->len == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint16_t *fresh = malloc(cap * sizeof *fresh);
    if (fresh == NULL) oom();
    if (t->len) memcpy(fresh, t->u, t->len * sizeof *fresh);
    wipe(t->u, t->cap * sizeof *t->u);
    free(t->u);
    t->u = fresh;
    t->cap = cap;
  }
  t->u[t->len++] = unit;
}
static void text_free(text_t *t) {
  wipe(t->u, t->cap * sizeof *t->u);
  free(t->u);
  t->u = NULL;
  t->len = t->cap = 0;
}
static void text_add_cp(text_t *t, uint32_t cp) {
  if (cp >= 0x10000) {
    cp -= 0x10000;
    text_add(t, (uint16_t)(0xD800 | (cp >> 10)));
    text_add(t, (uint16_t)(0xDC00 | (cp & 0x3FF)));
  } else {
    text_add(t, (uint16_t)cp);
  }
}
static void text_from_utf8(text_t *t, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    i += utf8_next((const unsigned char *)s, n, i, &cp);
    text_add_cp(t, cp);
  }
}

/* As Node writes a string to a stream: UTF-8, lone surrogates as U+FFFD. */
static void text_to_utf8(buf_t *b, const text_t *t) {
  for (size_t i = 0; i < t->len; i++) {
    uint32_t u = t->u[i];
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < t->len && t->u[i + 1] >= 0xDC00 && t->u[i + 1] <= 0xDFFF) {
      put_utf8(b, 0x10000 + ((u - 0xD800) << 10) + (t->u[i + 1] - 0xDC00u));
      i++;
    } else {
      put_utf8(b, u);
    }
  }
}

/* As JSON.stringify writes a string (well-formed JSON.stringify: lone surrogates escaped). */
static void text_to_json(buf_t *b, const text_t *t) {
  static const char hex[] = "0123456789abcdef";
  buf_byte(b, '"');
  for (size_t i = 0; i < t->len; i++) {
    uint32_t u = t->u[i];
    if (u == '"') buf_str(b, "\\\"");
    else if (u == '\\') buf_str(b, "\\\\");
    else if (u == '\b') buf_str(b, "\\b");
    else if (u == '\f') buf_str(b, "\\f");
    else if (u == '\n') buf_str(b, "\\n");
    else if (u == '\r') buf_str(b, "\\r");
    else if (u == '\t') buf_str(b, "\\t");
    else if (u < 0x20 || (u >= 0xD800 && u <= 0xDFFF && !(u <= 0xDBFF && i + 1 < t->len && t->u[i + 1] >= 0xDC00 && t->u[i + 1] <= 0xDFFF))) {
      if (u >= 0xDC00 && u <= 0xDFFF && i > 0 && t->u[i - 1] >= 0xD800 && t->u[i - 1] <= 0xDBFF) { put_utf8(b, 0x10000 + ((t->u[i - 1] - 0xD800u) << 10) + (u - 0xDC00)); continue; }
      char esc[7] = {'\\', 'u', hex[(u >> 12) & 15], hex[(u >> 8) & 15], hex[(u >> 4) & 15], hex[u & 15], 0};
      buf_str(b, esc);
    } else if (u >= 0xD800 && u <= 0xDBFF) {
      put_utf8(b, 0x10000 + ((u - 0xD800) << 10) + (t->u[i + 1] - 0xDC00u));
      i++;
    } else {
      put_utf8(b, u);
    }
  }
  buf_byte(b, '"');
}

static void json_string_utf8(buf_t *b, const char *s) {
  text_t t = {0};
  text_from_utf8(&t, s);
  text_to_json(b, &t);
  text_free(&t);
}

/* ---------- a strict JSON parser (the grammar JSON.parse accepts) over a decoded frame ---------- */

enum { J_NONE, J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

typedef struct {
  const unsigned char *s;
  size_t n, i;
  int depth;
} parser_t;

typedef struct {
  int type;
  size_t start, end; /* the value's bytes in the frame */
} jvalue_t;

#define MAX_JSON_DEPTH 1000

static void skip_ws(parser_t *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string at p->i (the opening quote); decoded into `out` when given. */
static int parse_string(parser_t *p, text_t *out) {
  if (p->i >= p->n || p->s[p->i] != '"') return -1;
  p->i++;
  while (p->i < p->n) {
    unsigned char c = p->s[p->i];
    if (c == '"') { p->i++; return 0; }
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (p->i + 1 >= p->n) return -1;
      unsigned char e = p->s[p->i + 1];
      uint32_t unit;
      p->i += 2;
      switch (e) {
        case '"': unit = '"'; break;
        case '\\': unit = '\\'; break;
        case '/': unit = '/'; break;
        case 'b': unit = '\b'; break;
        case 'f': unit = '\f'; break;
        case 'n': unit = '\n'; break;
        case 'r': unit = '\r'; break;
        case 't': unit = '\t'; break;
        case 'u': {
          if (p->i + 4 > p->n) return -1;
          unit = 0;
          for (int k = 0; k < 4; k++) {
            int h = hexval(p->s[p->i + (size_t)k]);
            if (h < 0) return -1;
            unit = (unit << 4) | (uint32_t)h;
          }
          p->i += 4;
          break;
        }
        default: return -1;
      }
      if (out) text_add(out, (uint16_t)unit);
      continue;
    }
    uint32_t cp;
    size_t step = utf8_next(p->s, p->n, p->i, &cp);
    if (out) text_add_cp(out, cp);
    p->i += step;
  }
  return -1;
}

static int parse_value(parser_t *p, jvalue_t *v);

static int parse_number(parser_t *p) {
  size_t i = p->i;
  if (i < p->n && p->s[i] == '-') i++;
  if (i >= p->n) return -1;
  if (p->s[i] == '0') i++;
  else if (p->s[i] >= '1' && p->s[i] <= '9') while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
  else return -1;
  if (i < p->n && p->s[i] == '.') {
    i++;
    if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return -1;
    while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
  }
  if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
    i++;
    if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
    if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return -1;
    while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
  }
  p->i = i;
  return 0;
}

static int parse_literal(parser_t *p, const char *word) {
  size_t n = strlen(word);
  if (p->n - p->i < n || memcmp(p->s + p->i, word, n) != 0) return -1;
  p->i += n;
  return 0;
}

static int parse_value(parser_t *p, jvalue_t *v) {
  skip_ws(p);
  if (p->i >= p->n) return -1;
  v->start = p->i;
  unsigned char c = p->s[p->i];
  int rc;
  if (c == '{' || c == '[') {
    if (++p->depth > MAX_JSON_DEPTH) return -1;
    unsigned char close = c == '{' ? '}' : ']';
    v->type = c == '{' ? J_OBJECT : J_ARRAY;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
      p->i++;
    } else {
      for (;;) {
        jvalue_t item;
        if (v->type == J_OBJECT) {
          skip_ws(p);
          if (parse_string(p, NULL) != 0) return -1;
          skip_ws(p);
          if (p->i >= p->n || p->s[p->i] != ':') return -1;
          p->i++;
        }
        if (parse_value(p, &item) != 0) return -1;
        skip_ws(p);
        if (p->i >= p->n) return -1;
        if (p->s[p->i] == ',') { p->i++; continue; }
        if (p->s[p->i] == close) { p->i++; break; }
        return -1;
      }
    }
    p->depth--;
    rc = 0;
  } else if (c == '"') {
    v->type = J_STRING;
    rc = parse_string(p, NULL);
  } else if (c == 't') {
    v->type = J_TRUE;
    rc = parse_literal(p, "true");
  } else if (c == 'f') {
    v->type = J_FALSE;
    rc = parse_literal(p, "false");
  } else if (c == 'n') {
    v->type = J_NULL;
    rc = parse_literal(p, "null");
  } else {
    v->type = J_NUMBER;
    rc = parse_number(p);
  }
  v->end = p->i;
  return rc;
}

/* The whole frame is one JSON value. */
static int parse_document(const unsigned char *s, size_t n, jvalue_t *v) {
  parser_t p = {s, n, 0, 0};
  if (parse_value(&p, v) != 0) return -1;
  skip_ws(&p);
  return p.i == n ? 0 : -1;
}

/*
 * Look a member up in an object (already validated): JSON.parse keeps the last of duplicate
 * keys. Keys are compared decoded ("\u0069d" is "id").
 */
static int object_get(const unsigned char *s, const jvalue_t *object, const char *key, jvalue_t *out) {
  parser_t p = {s, object->end, object->start + 1, 0};
  int found = 0;
  skip_ws(&p);
  if (p.s[p.i] == '}') return 0;
  for (;;) {
    skip_ws(&p);
    text_t name = {0};
    parse_string(&p, &name);
    text_t want = {0};
    text_from_utf8(&want, key);
    int same = name.len == want.len && (name.len == 0 || memcmp(name.u, want.u, name.len * sizeof *name.u) == 0);
    text_free(&name);
    text_free(&want);
    skip_ws(&p);
    p.i++; /* ':' */
    jvalue_t value;
    parse_value(&p, &value);
    if (same) { *out = value; found = 1; }
    skip_ws(&p);
    if (p.s[p.i] == ',') { p.i++; continue; }
    break;
  }
  return found;
}

/* The keys of an object, in order, into `keys` (decoded, ASCII only); -1 when not plain. */
static int object_keys(const unsigned char *s, const jvalue_t *object, char keys[][16], int max) {
  parser_t p = {s, object->end, object->start + 1, 0};
  int count = 0;
  skip_ws(&p);
  if (p.s[p.i] == '}') return 0;
  for (;;) {
    skip_ws(&p);
    text_t name = {0};
    parse_string(&p, &name);
    if (count >= max || name.len >= 16) { text_free(&name); return -1; }
    for (size_t k = 0; k < name.len; k++) {
      if (name.u[k] == 0 || name.u[k] > 0x7E) { text_free(&name); return -1; }
      keys[count][k] = (char)name.u[k];
    }
    keys[count][name.len] = '\0';
    for (int k = 0; k < count; k++) if (strcmp(keys[k], keys[count]) == 0) { text_free(&name); return -1; }
    count++;
    text_free(&name);
    skip_ws(&p);
    p.i++;
    jvalue_t value;
    parse_value(&p, &value);
    skip_ws(&p);
    if (p.s[p.i] == ',') { p.i++; continue; }
    break;
  }
  return count;
}

static void string_value(const unsigned char *s, const jvalue_t *v, text_t *out) {
  parser_t p = {s, v->end, v->start, 0};
  parse_string(&p, out);
}

/* ---------- errors, reported as reportError (src/cli/output.ts) does ---------- */

typedef struct {
  const char *code; /* one of ERROR_TABLE's, or NULL for none */
  text_t message;
} failure_t;

static int exit_code_of(const char *code) {
  for (size_t i = 0; i < sizeof ERROR_TABLE / sizeof ERROR_TABLE[0]; i++)
    if (strcmp(ERROR_TABLE[i].code, code) == 0) return ERROR_TABLE[i].exit;
  return EXIT_ERR_INTERNAL;
}

static const char *known_code(const text_t *t) {
  for (size_t i = 0; i < sizeof ERROR_TABLE / sizeof ERROR_TABLE[0]; i++) {
    const char *c = ERROR_TABLE[i].code;
    size_t n = strlen(c);
    if (n != t->len) continue;
    size_t k = 0;
    while (k < n && t->u[k] == (unsigned char)c[k]) k++;
    if (k == n) return c;
  }
  return NULL;
}

static void report(const char *code, const text_t *message) {
  text_t shown = {0};
  for (size_t i = 0; i < message->len; i++) text_add(&shown, message->u[i]);
  /* withHint (src/cli/exitCodes.ts): the remedy, unless the message names a command already. */
  for (size_t i = 0; i < sizeof ERROR_TABLE / sizeof ERROR_TABLE[0]; i++) {
    if (strcmp(ERROR_TABLE[i].code, code) != 0 || ERROR_TABLE[i].hint == NULL) continue;
    static const char named[] = "\"keynode ";
    int names = 0;
    for (size_t k = 0; k + sizeof named - 1 <= message->len && !names; k++) {
      size_t j = 0;
      while (j < sizeof named - 1 && message->u[k + j] == (unsigned char)named[j]) j++;
      names = j == sizeof named - 1;
    }
    if (!names) {
      text_from_utf8(&shown, ": ");
      text_from_utf8(&shown, ERROR_TABLE[i].hint);
    }
  }
  g_out.len = 0;
  if (g_json) {
    buf_str(&g_out, "{\n  \"error\": {\n    \"code\": ");
    json_string_utf8(&g_out, code);
    buf_str(&g_out, ",\n    \"message\": ");
    text_to_json(&g_out, &shown);
    buf_str(&g_out, "\n  }\n}\n");
  } else {
    buf_str(&g_out, "keynode: ");
    text_to_utf8(&g_out, &shown);
    buf_str(&g_out, " (");
    buf_str(&g_out, code);
    buf_str(&g_out, ")\n");
  }
  text_free(&shown);
  finish(g_json ? 1 : 2, exit_code_of(code));
}

static void report_c(const char *code, const char *message) {
  text_t t = {0};
  text_from_utf8(&t, message);
  report(code, &t);
}

/* ---------- the node path, session and socket, as src/ipc/paths.ts finds them ---------- */

static int ascii_printable(const char *s) {
  for (; *s; s++) if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E) return 0;
  return 1;
}

/* path.resolve / path.join for absolute results: collapse '//', '.', '..'; no trailing '/'. */
static int normalize_path(const char *in, char *out, size_t size) {
  char work[PATH_MAX];
  if (strlen(in) >= sizeof work) return -1;
  strcpy(work, in);
  size_t len = 0;
  out[0] = '\0';
  char *save = NULL;
  for (char *seg = strtok_r(work, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
    if (strcmp(seg, ".") == 0) continue;
    if (strcmp(seg, "..") == 0) {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      out[len] = '\0';
      continue;
    }
    size_t n = strlen(seg);
    if (len + 1 + n + 1 > size) return -1;
    out[len++] = '/';
    memcpy(out + len, seg, n);
    len += n;
    out[len] = '\0';
  }
  if (len == 0) {
    if (size < 2) return -1;
    strcpy(out, "/");
  }
  return 0;
}

static int resolve_path(const char *p, char *out, size_t size) {
  char joined[PATH_MAX];
  if (p[0] == '/') {
    if (strlen(p) >= sizeof joined) return -1;
    strcpy(joined, p);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return -1;
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, p) >= sizeof joined) return -1;
  }
  return normalize_path(joined, out, size);
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* resolveNodePath (src/node/nodePath.ts). */
static int node_path_of(const char *explicit_path, char *out, size_t size) {
  char joined[PATH_MAX];
  const char *v;
  if (explicit_path != NULL && explicit_path[0] != '\0') return resolve_path(explicit_path, out, size);
  if ((v = env_nonempty("KEYNODE_PATH")) != NULL) return resolve_path(v, out, size);
  if ((v = env_nonempty("XDG_DATA_HOME")) != NULL) {
    char base[PATH_MAX];
    if (resolve_path(v, base, sizeof base) != 0) return -1;
    if ((size_t)snprintf(joined, sizeof joined, "%s/keynode", base) >= sizeof joined) return -1;
    return normalize_path(joined, out, size);
  }
  /* os.homedir() takes HOME when it is set, even empty (then the node path is relative). */
  const char *home = getenv("HOME");
  if (home == NULL) {
    struct passwd *pw = getpwuid(getuid());
    if (pw == NULL || pw->pw_dir == NULL) return -1;
    home = pw->pw_dir;
  }
  if (home[0] != '/') return -1; /* a relative home: Node's answer depends on more than this mirrors */
  if ((size_t)snprintf(joined, sizeof joined, "%s/.local/share/keynode", home) >= sizeof joined) return -1;
  return normalize_path(joined, out, size);
}

static void base64url(const unsigned char *in, size_t n, char *out) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
  }
  out[o] = '\0';
}

/* The session file's path, or -1 where Node would find none (then Node decides what to do). */
static int session_file_of(const char *node_path, char *out, size_t size) {
  char dir[PATH_MAX], real[PATH_MAX];
  const char *base = env_nonempty("XDG_RUNTIME_DIR");
  if (base != NULL) {
    if (base[0] != '/' || (size_t)snprintf(dir, sizeof dir, "%s/keynode", base) >= sizeof dir) return -1;
  } else {
    const char *tmp = env_nonempty("TMPDIR");
    if (tmp == NULL) tmp = env_nonempty("TMP");
    if (tmp == NULL) tmp = env_nonempty("TEMP");
    if (tmp == NULL) tmp = "/tmp";
    if (tmp[0] != '/' || (size_t)snprintf(dir, sizeof dir, "%s/keynode-%u", tmp, (unsigned)getuid()) >= sizeof dir) return -1;
  }
  char normal[PATH_MAX];
  if (normalize_path(dir, normal, sizeof normal) != 0) return -1;
  struct stat st;
  /* runtimeDir(): a directory of ours that nobody else may enter, else no session. */
  if (lstat(normal, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0) return -1;
  const char *key_source = realpath(node_path, real) != NULL ? real : node_path;
  size_t n = strlen(key_source);
  char key[PATH_MAX * 2];
  if (n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) > 150) return -1; /* Node hashes long keys (sha256): left to Node */
  base64url((const unsigned char *)key_source, n, key);
  if ((size_t)snprintf(out, size, "%s/session-%s.json", normal, key) >= size) return -1;
  return 0;
}

/*
 * A JSON number the codec's `count` takes as it is written here: digits only, at most
 * Number.MAX_SAFE_INTEGER (a larger one makes Node discard the session: then Node decides).
 */
static int safe_count(const char *number) {
  size_t n = strlen(number);
  if (n == 0 || n > 16) return 0;
  for (size_t i = 0; i < n; i++) if (number[i] < '0' || number[i] > '9') return 0;
  return n < 16 || strcmp(number, "9007199254740991") <= 0;
}

typedef struct {
  char token[512];
  double expires_at, issued_at;
  int has_issued;
} session_t;

static int read_session(const char *file, session_t *session) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  unsigned char data[4096];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, data + len, sizeof data - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { close(fd); return -1; }
    if (r == 0) break;
    len += (size_t)r;
    if (len == sizeof data) { close(fd); wipe(data, sizeof data); return -1; }
  }
  close(fd);
  jvalue_t doc, token, expires, issued;
  int rc = -1;
  char keys[4][16];
  int count;
  memset(session, 0, sizeof *session);
  if (parse_document(data, len, &doc) != 0 || doc.type != J_OBJECT) goto done;
  count = object_keys(data, &doc, keys, 4);
  if (count < 2) goto done;
  for (int i = 0; i < count; i++)
    if (strcmp(keys[i], "token") != 0 && strcmp(keys[i], "expiresAt") != 0 && strcmp(keys[i], "issuedAt") != 0) goto done;
  if (!object_get(data, &doc, "token", &token) || token.type != J_STRING) goto done;
  if (!object_get(data, &doc, "expiresAt", &expires) || expires.type != J_NUMBER) goto done;
  /* The token as plain text only: anything needing escapes is left to Node. */
  if (token.end - token.start - 2 >= sizeof session->token) goto done;
  for (size_t i = token.start + 1; i + 1 < token.end; i++)
    if (data[i] < 0x21 || data[i] > 0x7E || data[i] == '\\' || data[i] == '"') goto done;
  memcpy(session->token, data + token.start + 1, token.end - token.start - 2);
  {
    char number[64];
    size_t n = expires.end - expires.start;
    if (n >= sizeof number) goto done;
    memcpy(number, data + expires.start, n);
    number[n] = '\0';
    if (!safe_count(number)) goto done; /* counts only */
    session->expires_at = strtod(number, NULL);
    if (object_get(data, &doc, "issuedAt", &issued)) {
      n = issued.end - issued.start;
      if (issued.type != J_NUMBER || n >= sizeof number) goto done;
      memcpy(number, data + issued.start, n);
      number[n] = '\0';
      if (!safe_count(number)) goto done;
      session->issued_at = strtod(number, NULL);
      session->has_issued = 1;
    }
  }
  rc = 0;
done:
  wipe(data, sizeof data);
  if (rc != 0) wipe(session, sizeof *session);
  return rc;
}

/* checkSocketOwner (src/client/AgentConnection.ts): ours, in a directory nobody else may write. */
static int socket_is_ours(const char *socket_path) {
  struct stat st, dir_st;
  if (lstat(socket_path, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  char dir[PATH_MAX];
  strcpy(dir, socket_path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL) return 0;
  if (slash == dir) slash[1] = '\0';
  else *slash = '\0';
  if (stat(dir, &dir_st) != 0) return 0;
  uid_t uid = getuid();
  if (st.st_uid != uid || (st.st_mode & 077) != 0) return 0;
  if (dir_st.st_uid != uid || (dir_st.st_mode & 022) != 0) return 0;
  return 1;
}

/* ---------- secret references, checked conservatively (parseSecretRef decides the rest) ---------- */

/*
 * Plain ASCII refs only: every git-reserved spelling that normalizeSecretPath refuses starts
 * with ".git" or contains "~", so such segments, non-ASCII text and anything else unusual go
 * to Node, which validates them fully and reports its own error.
 */
static int plain_ref(const char *ref, char *vault, size_t vault_size, char *path, size_t path_size) {
  const char *colon = strchr(ref, ':');
  if (colon == NULL || !ascii_printable(ref) || strchr(ref, '\\')) return 0;
  size_t vault_len = (size_t)(colon - ref);
  if (vault_len == 0 || vault_len > VAULT_NAME_MAX_BYTES || vault_len >= vault_size) return 0;
  memcpy(vault, ref, vault_len);
  vault[vault_len] = '\0';
  if (strchr(vault, '/') || vault[0] == ' ' || vault[vault_len - 1] == ' ' || strcmp(vault, ".") == 0 || strcmp(vault, "..") == 0) return 0;
  const char *p = colon + 1;
  size_t len = strlen(p);
  if (len > 1 && p[len - 1] == '/') len--; /* a trailing '/' is dropped */
  if (len == 0 || p[0] == '/' || len > SECRET_PATH_MAX_BYTES || len >= path_size) return 0;
  memcpy(path, p, len);
  path[len] = '\0';
  const char *seg = path;
  for (;;) {
    const char *end = strchr(seg, '/');
    size_t n = end ? (size_t)(end - seg) : strlen(seg);
    if (n == 0 || n > SECRET_SEGMENT_MAX_BYTES) return 0;
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) return 0;
    if (memchr(seg, '~', n)) return 0;
    if (n >= 4 && seg[0] == '.' && (seg[1] | 32) == 'g' && (seg[2] | 32) == 'i' && (seg[3] | 32) == 't') return 0;
    if (!end) break;
    seg = end + 1;
  }
  return 1;
}

/* ---------- the agent connection ---------- */

static size_t g_max_reply = MAX_REPLY_BYTES;

/* Result of waiting for the reply to request `id`. */
enum { R_RESULT, R_ERROR, R_CLOSED, R_FAILED };

typedef struct {
  int kind;
  jvalue_t result;          /* R_RESULT: within g_decoded */
  int has_result;
  const char *code;         /* R_ERROR */
  text_t message;           /* R_ERROR */
} reply_t;

static void reply_error(reply_t *r, const char *code, const char *message) {
  r->kind = R_ERROR;
  r->code = code;
  text_from_utf8(&r->message, message);
}

/*
 * One frame, as parseReply and AgentConnection#onFrame take it: returns 1 when it settles the
 * wait for `id` (a reply to it, or an error about the whole connection), 0 to keep reading.
 */
static int take_frame(const unsigned char *frame, size_t n, double id, reply_t *r) {
  /* Buffer#toString('utf8'): invalid bytes become U+FFFD; the parser then sees valid UTF-8. */
  g_decoded.len = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t step = utf8_next(frame, n, i, &cp);
    if (cp == 0xFFFD) put_utf8(&g_decoded, cp);
    else buf_add(&g_decoded, frame + i, step);
    i += step;
  }
  const unsigned char *s = g_decoded.data;
  jvalue_t doc, idv, error, result;
  if (parse_document(s, g_decoded.len, &doc) != 0) { reply_error(r, "ERR_INTERNAL", "the agent sent something that is not JSON"); return 1; }
  if (doc.type != J_OBJECT) { reply_error(r, "ERR_INTERNAL", "the agent sent a reply that is not an object"); return 1; }
  int has_id = object_get(s, &doc, "id", &idv);
  int numeric_id = has_id && idv.type == J_NUMBER;
  int null_id = !has_id || (idv.type != J_NUMBER && idv.type != J_STRING);
  int has_error = object_get(s, &doc, "error", &error);
  int matches = 0;
  if (numeric_id) {
    /* Any length: JSON.parse reads "1.000...0" (however long) as 1. */
    size_t len = idv.end - idv.start;
    char *number = malloc(len + 1);
    if (number == NULL) oom();
    memcpy(number, s + idv.start, len);
    number[len] = '\0';
    matches = strtod(number, NULL) == id;
    free(number);
  }
  if (!(matches || (null_id && has_error))) return 0;
  if (has_error) {
    /* KeynodeError.fromJSON: a known code, a readable message, else ERR_INTERNAL / a stand-in. */
    jvalue_t code, message;
    r->kind = R_ERROR;
    r->code = "ERR_INTERNAL";
    int readable = 0;
    if (error.type == J_OBJECT) {
      if (object_get(s, &error, "code", &code) && code.type == J_STRING) {
        text_t t = {0};
        string_value(s, &code, &t);
        const char *known = known_code(&t);
        if (known) r->code = known;
        text_free(&t);
      }
      if (object_get(s, &error, "message", &message) && message.type == J_STRING) {
        string_value(s, &message, &r->message);
        readable = r->message.len <= MAX_WIRE_MESSAGE_CHARS;
        /* One line, nothing a terminal acts on: as KeynodeError.fromJSON, control characters become U+FFFD. */
        for (size_t k = 0; k < r->message.len; k++) {
          unsigned u = r->message.u[k];
          if (u < 0x20 || (u >= 0x7f && u <= 0x9f) || u == 0x2028 || u == 0x2029) r->message.u[k] = 0xFFFD;
        }
      }
    }
    if (!readable) {
      text_free(&r->message);
      text_from_utf8(&r->message, "error without a readable message");
    }
    return 1;
  }
  r->kind = R_RESULT;
  r->has_result = object_get(s, &doc, "result", &result);
  r->result = result;
  return 1;
}

/* Wait for the reply to `id`, reading at most g_max_reply bytes a frame. */
static void await_reply(double id, reply_t *r) {
  memset(r, 0, sizeof *r);
  size_t scanned = 0;
  for (;;) {
    /* Whole frames first: one read may carry several (moved down once, not once a frame). */
    size_t start = 0;
    int settled = 0;
    for (;;) {
      unsigned char *newline = g_frames.len > scanned ? memchr(g_frames.data + scanned, '\n', g_frames.len - scanned) : NULL;
      if (newline == NULL) { scanned = g_frames.len; break; }
      size_t n = (size_t)(newline - (g_frames.data + start));
      if (n > g_max_reply) { reply_error(r, "ERR_INVALID_REQUEST", "the agent sent an oversized frame"); return; }
      settled = n > 0 && take_frame(g_frames.data + start, n, id, r);
      wipe(g_frames.data + start, n + 1);
      start += n + 1;
      scanned = start;
      if (settled) break;
    }
    if (start > 0) {
      memmove(g_frames.data, g_frames.data + start, g_frames.len - start);
      wipe(g_frames.data + g_frames.len - start, start);
      g_frames.len -= start;
      scanned -= start;
    }
    if (settled) return;
    if (g_frames.len > g_max_reply) { reply_error(r, "ERR_INVALID_REQUEST", "the agent sent an oversized frame"); return; }
    if (buf_reserve(&g_frames, 65536) != 0) oom();
    ssize_t got = read(g_sock, g_frames.data + g_frames.len, g_frames.cap - g_frames.len);
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) { r->kind = R_CLOSED; reply_error(r, "ERR_AGENT_NOT_RUNNING", "the agent closed the connection"); r->kind = R_CLOSED; return; }
    if (got < 0) { reply_error(r, "ERR_AGENT_NOT_RUNNING", "the connection to the agent failed"); r->kind = R_FAILED; return; }
    g_frames.len += (size_t)got;
  }
}

static int send_request(int id, const char *method, const char *token, const buf_t *params) {
  g_request.len = 0;
  char head[64];
  snprintf(head, sizeof head, "{\"v\":%d,\"id\":%d,\"method\":", PROTOCOL_VERSION, id);
  buf_str(&g_request, head);
  json_string_utf8(&g_request, method);
  buf_str(&g_request, ",\"token\":");
  json_string_utf8(&g_request, token);
  buf_str(&g_request, ",\"params\":");
  buf_add(&g_request, params->data, params->len);
  buf_str(&g_request, "}\n");
  return write_all(g_sock, g_request.data, g_request.len);
}

static double now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec * 1000.0 + (double)(tv.tv_usec / 1000);
}

static int base64_decode(const unsigned char *in, size_t n, buf_t *out) {
  static signed char table[256];
  static int ready = 0;
  if (!ready) {
    memset(table, -1, sizeof table);
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) table[(unsigned char)alphabet[i]] = (signed char)i;
    ready = 1;
  }
  while (n > 0 && in[n - 1] == '=') n--;
  if (n % 4 == 1) return -1;
  if (buf_reserve(out, n / 4 * 3 + 3) != 0) oom();
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = table[in[i]];
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->data[out->len++] = (unsigned char)(acc >> bits);
    }
  }
  wipe(&acc, sizeof acc);
  return 0;
}

static void base64_encode(const unsigned char *in, size_t n, buf_t *out) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (buf_reserve(out, (n + 2) / 3 * 4) != 0) oom();
  unsigned char *o = out->data + out->len;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    *o++ = (unsigned char)alphabet[v >> 18];
    *o++ = (unsigned char)alphabet[(v >> 12) & 63];
    *o++ = (unsigned char)alphabet[(v >> 6) & 63];
    *o++ = (unsigned char)alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *o++ = (unsigned char)alphabet[v >> 18];
    *o++ = (unsigned char)alphabet[(v >> 12) & 63];
    *o++ = '=';
    *o++ = '=';
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    *o++ = (unsigned char)alphabet[v >> 18];
    *o++ = (unsigned char)alphabet[(v >> 12) & 63];
    *o++ = (unsigned char)alphabet[(v >> 6) & 63];
    *o++ = '=';
  }
  out->len = (size_t)(o - out->data);
}

static void malformed(void) { report_c("ERR_INTERNAL", "internal error: the agent sent a malformed reply"); }

/* ---------- main ---------- */

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  /*
   * A closed stdin, stdout or stderr is /dev/null, as Node makes it: otherwise the agent socket
   * would take that number, and the value would be read from it or written to it.
   */
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int null = open("/dev/null", O_RDWR);
    if (null != fd) _exit(EXIT_ERR_INTERNAL); /* cannot happen: the lowest free number is fd */
  }
  /* No core dump (nor ptrace by other processes of the user) while a value or the token is held. */
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  const char *max = getenv("KEYNODE_NATIVE_MAX_REPLY_BYTES"); /* tests: a lower bound only */
  if (max != NULL) {
    unsigned long long v = strtoull(max, NULL, 10);
    if (v > 0 && v < g_max_reply) g_max_reply = (size_t)v;
  }

  /* The same arguments src/cli/fast.ts takes; anything else is Node's. */
  if (argc < 3 || strcmp(argv[1], "secrets") != 0) fallback();
  int is_get = strcmp(argv[2], "get") == 0, is_set = strcmp(argv[2], "set") == 0;
  if (!is_get && !is_set) fallback();
  const char *ref = NULL, *node_path_arg = NULL, *version = NULL, *message = NULL;
  for (int i = 3; i < argc; i++) {
    const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--json") == 0) g_json = 1;
    else if (strcmp(arg, "--node-path") == 0 && value) { node_path_arg = value; i++; }
    else if (strcmp(arg, "--version") == 0 && is_get && value) { version = value; i++; }
    else if ((strcmp(arg, "-m") == 0 || strcmp(arg, "--message") == 0) && is_set && value) { message = value; i++; }
    else if (arg[0] != '-' && ref == NULL) ref = arg;
    else fallback();
  }
  if (ref == NULL) fallback();
  if (is_set && isatty(0)) fallback();
  if (is_set) {
    /* Pipes, files and devices are read here; anything else (a directory...) is Node's to judge. */
    struct stat in;
    if (fstat(0, &in) != 0 || !(S_ISFIFO(in.st_mode) || S_ISREG(in.st_mode) || S_ISCHR(in.st_mode) || S_ISSOCK(in.st_mode))) fallback();
  }
  if ((version && !utf8_valid((const unsigned char *)version, strlen(version))) || (message && !utf8_valid((const unsigned char *)message, strlen(message)))) fallback();
  char vault[VAULT_NAME_MAX_BYTES + 1], path[SECRET_PATH_MAX_BYTES + 1];
  if (!plain_ref(ref, vault, sizeof vault, path, sizeof path)) fallback();

  char node_path[PATH_MAX], socket_path[PATH_MAX], session_path[PATH_MAX];
  if (node_path_of(node_path_arg, node_path, sizeof node_path) != 0 || !ascii_printable(node_path)) fallback();
  if ((size_t)snprintf(socket_path, sizeof socket_path, "%s/%s", strcmp(node_path, "/") == 0 ? "" : node_path, "agent.sock") >= sizeof socket_path) fallback();
  if (strlen(socket_path) > MAX_SOCKET_PATH_BYTES) fallback(); /* Node moves it to the runtime directory */
  if (!socket_is_ours(socket_path)) fallback();

  /* A live session not yet due for refresh (AgentClient refreshes past half its life). */
  session_t session;
  if (session_file_of(node_path, session_path, sizeof session_path) != 0 || read_session(session_path, &session) != 0) fallback();
  double now = now_ms();
  double issued = session.has_issued ? session.issued_at : now;
  if (!(session.expires_at > now) || now > issued + (session.expires_at - issued) / 2) { wipe(&session, sizeof session); fallback(); }

  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (strlen(socket_path) >= sizeof address.sun_path) fallback();
  strcpy(address.sun_path, socket_path);
  g_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (g_sock < 0 || connect(g_sock, (struct sockaddr *)&address, sizeof address) != 0) { wipe(&session, sizeof session); fallback(); }

  buf_t params = {0};
  reply_t reply;
  if (is_get) {
    buf_str(&params, "{\"vault\":");
    json_string_utf8(&params, vault);
    buf_str(&params, ",\"path\":");
    json_string_utf8(&params, path);
    if (version) { buf_str(&params, ",\"version\":"); json_string_utf8(&params, version); }
    buf_str(&params, "}");
    int sent = send_request(1, "secrets.get", session.token, &params);
    wipe(&session, sizeof session);
    buf_free(&params);
    if (sent != 0) fallback(); /* nothing reached the agent: Node tries again */
    await_reply(1, &reply);
    /* As the fast path: a session the agent refuses, or no agent after all, is the full CLI's. */
    /* ERR_NOT_SUPPORTED: a value too large to answer whole, which Node streams (secrets.getStream). */
    if (reply.kind != R_RESULT && (strcmp(reply.code, "ERR_UNAUTHENTICATED") == 0 || strcmp(reply.code, "ERR_AGENT_LOCKED") == 0 || strcmp(reply.code, "ERR_AGENT_NOT_RUNNING") == 0 || strcmp(reply.code, "ERR_NOT_SUPPORTED") == 0)) {
      text_free(&reply.message);
      fallback();
    }
    if (reply.kind != R_RESULT) report(reply.code, &reply.message);
    jvalue_t value;
    const unsigned char *s = g_decoded.data;
    if (!reply.has_result || reply.result.type != J_OBJECT || !object_get(s, &reply.result, "value", &value) || value.type != J_STRING) malformed();
    /* Standard base64, no escapes, as the agent writes it; anything else is malformed. */
    for (size_t i = value.start + 1; i + 1 < value.end; i++) if (s[i] == '\\') malformed();
    if (base64_decode(s + value.start + 1, value.end - value.start - 2, &g_value) != 0) malformed();
    g_out.len = 0;
    if (!g_json) {
      buf_add(&g_out, g_value.data, g_value.len);
    } else {
      /* printSecretValue (src/cli/format.ts) */
      int utf8 = utf8_valid(g_value.data, g_value.len);
      buf_str(&g_out, "{\"vault\":");
      json_string_utf8(&g_out, vault);
      buf_str(&g_out, ",\"path\":");
      json_string_utf8(&g_out, path);
      buf_str(&g_out, ",\"version\":");
      json_string_utf8(&g_out, version ? version : "HEAD");
      buf_str(&g_out, utf8 ? ",\"encoding\":\"utf8\",\"value\":" : ",\"encoding\":\"base64\",\"value\":");
      if (utf8) {
        text_t t = {0};
        size_t n = g_value.len;
        for (size_t i = 0; i < n;) {
          uint32_t cp;
          i += utf8_next(g_value.data, n, i, &cp);
          text_add_cp(&t, cp);
        }
        text_to_json(&g_out, &t);
        text_free(&t);
      } else {
        buf_byte(&g_out, '"');
        base64_encode(g_value.data, g_value.len, &g_out);
        buf_byte(&g_out, '"');
      }
      buf_str(&g_out, "}\n");
    }
    finish(1, 0);
  }

  /* set: an authenticated probe first, so a refused session falls back while stdin is unread. */
  buf_str(&params, "{}");
  int sent = send_request(1, "node.status", session.token, &params);
  buf_free(&params);
  if (sent != 0) { wipe(&session, sizeof session); fallback(); }
  await_reply(1, &reply);
  if (reply.kind != R_RESULT) { text_free(&reply.message); wipe(&session, sizeof session); fallback(); }

  /* A value past LARGE_BLOB_THRESHOLD_BYTES is streamed by Node (src/cli/values.ts): a regular
     file is handed over unread; from a pipe, what was read goes to Node first (fallback_with_read). */
  struct stat in_stat;
  if (fstat(0, &in_stat) == 0 && S_ISREG(in_stat.st_mode) && in_stat.st_size > (off_t)LARGE_BLOB_THRESHOLD_BYTES) { wipe(&session, sizeof session); fallback(); }
  for (;;) {
    if (buf_reserve(&g_value, 65536) != 0) oom();
    ssize_t got = read(0, g_value.data + g_value.len, g_value.cap - g_value.len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { wipe(&session, sizeof session); report_c("ERR_INTERNAL", "internal error: reading stdin failed"); }
    if (got == 0) break;
    g_value.len += (size_t)got;
    if (g_value.len > LARGE_BLOB_THRESHOLD_BYTES) { wipe(&session, sizeof session); fallback_with_read(); }
  }
  buf_str(&params, "{\"vault\":");
  json_string_utf8(&params, vault);
  buf_str(&params, ",\"path\":");
  json_string_utf8(&params, path);
  buf_str(&params, ",\"value\":\"");
  base64_encode(g_value.data, g_value.len, &params);
  buf_str(&params, "\"");
  if (message) { buf_str(&params, ",\"message\":"); json_string_utf8(&params, message); }
  buf_str(&params, "}");
  sent = send_request(2, "secrets.set", session.token, &params);
  wipe(&session, sizeof session);
  buf_free(&params);
  if (sent != 0) report_c("ERR_AGENT_NOT_RUNNING", "the connection to the agent failed");
  await_reply(2, &reply);
  if (reply.kind != R_RESULT) report(reply.code, &reply.message);

  /* printSaved (src/cli/format.ts), for the result the agent sends: { commit, changed }. */
  const unsigned char *s = g_decoded.data;
  char keys[2][16];
  jvalue_t commit, changed;
  if (!reply.has_result || reply.result.type != J_OBJECT || object_keys(s, &reply.result, keys, 2) != 2) malformed();
  if (!object_get(s, &reply.result, "commit", &commit) || commit.type != J_STRING || !object_get(s, &reply.result, "changed", &changed) || (changed.type != J_TRUE && changed.type != J_FALSE)) malformed();
  size_t commit_len = commit.end - commit.start - 2;
  if (commit_len < 12 || commit_len > 64) malformed();
  for (size_t i = commit.start + 1; i + 1 < commit.end; i++) if (hexval(s[i]) < 0) malformed();
  char commit_hex[65];
  memcpy(commit_hex, s + commit.start + 1, commit_len);
  commit_hex[commit_len] = '\0';
  g_out.len = 0;
  if (g_json) {
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%zu", g_value.len);
    buf_str(&g_out, "{\n  \"vault\": ");
    json_string_utf8(&g_out, vault);
    buf_str(&g_out, ",\n  \"path\": ");
    json_string_utf8(&g_out, path);
    buf_str(&g_out, ",\n  \"bytes\": ");
    buf_str(&g_out, bytes);
    for (int k = 0; k < 2; k++) {
      buf_str(&g_out, ",\n  ");
      json_string_utf8(&g_out, keys[k]);
      buf_str(&g_out, ": ");
      if (strcmp(keys[k], "commit") == 0) json_string_utf8(&g_out, commit_hex);
      else buf_str(&g_out, changed.type == J_TRUE ? "true" : "false");
    }
    buf_str(&g_out, "\n}\n");
  } else if (changed.type == J_TRUE) {
    buf_str(&g_out, "Saved ");
    buf_str(&g_out, vault);
    buf_byte(&g_out, ':');
    buf_str(&g_out, path);
    buf_str(&g_out, " (commit ");
    buf_add(&g_out, commit_hex, 12);
    buf_str(&g_out, ")\n");
  } else {
    buf_str(&g_out, vault);
    buf_byte(&g_out, ':');
    buf_str(&g_out, path);
    buf_str(&g_out, " unchanged\n");
  }
  finish(1, 0);
  return 0;
}
