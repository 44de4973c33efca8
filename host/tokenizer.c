/* tokenizer.c - the char-level and byte-level BPE tokenizers of et_tokenizer.h, and
 * their file format.
 *
 * Both kinds end as the same tables: the bytes of every id (so decoding is one
 * concatenation for either), plus a code-point index (char) or a merge-rank hash (BPE).
 * BPE training counts each distinct pre-split chunk once with its frequency and keeps
 * pair counts up to date incrementally: a merge touches only the chunks that hold its
 * pair, and a lazy max-heap picks the next pair, so training costs about
 * O(N + merges * affected chunks) rather than a rescan of the text per merge.
 * Deliberately avoided: Unicode character classes (every byte >= 0x80 is a "letter"),
 * regular expressions, global tables that are written at run time, and any limit on
 * input size other than memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_tokenizer.h"

struct et_tokenizer {
    et_tok_type type;
    uint32_t vocab;
    size_t *off;           /* vocab + 1: bytes of id i are bytes[off[i] .. off[i+1]) */
    unsigned char *bytes;
    /* char */
    uint32_t *cps;         /* vocab code points, strictly ascending */
    int32_t ascii[128];    /* id of code point c < 128, or -1 */
    /* bpe */
    uint16_t *merges;      /* 2 * (vocab - 256): left, right of merge r */
    uint32_t *rank_key;    /* merge-rank hash: (left << 16 | right), ET__EMPTY if free */
    uint32_t *rank_val;
    size_t rank_cap;       /* power of two */
};

#define ET__EMPTY 0xffffffffu /* no id is 0xffff, so no pair key is this */
#define ET__MAGIC "ETTK"
#define ET__VERSION 1u
#define ET__HDR 20u

static uint32_t et__hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static size_t et__pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

// --- UTF-8 with surrogateescape

/* Decodes the code point at s[0] (n >= 1 bytes left) into *cp and returns its length.
 * A byte that does not start a well-formed sequence (Unicode Table 3-7: no overlongs,
 * no surrogates, nothing past U+10FFFF) is returned alone as U+DC00 + byte. Escaping
 * one byte at a time matches Python: the rest of an ill-formed sequence are
 * continuation bytes, which never start a valid one. */
static size_t et__utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t len, i;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        goto escape;
    if (n < len) goto escape;
    for (i = 1; i < len; i++) {
        unsigned d = s[i];
        if (d < lo || d > hi) goto escape;
        lo = 0x80, hi = 0xbf; /* only the second byte has a narrowed range */
        v = (v << 6) | (d & 0x3f);
    }
    *cp = v;
    return len;
escape:
    *cp = 0xdc00u + c;
    return 1;
}

/* Writes the bytes code point cp stands for; returns their count (1..4). */
static size_t et__utf8_put(uint32_t cp, unsigned char *o)
{
    if (cp >= 0xdc80 && cp <= 0xdcff) {
        o[0] = (unsigned char)(cp - 0xdc00);
        return 1;
    }
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A code point a char vocabulary may hold: a scalar value or one of the escapes. */
static int et__cp_ok(uint32_t cp)
{
    if (cp > 0x10ffff) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return cp >= 0xdc80 && cp <= 0xdcff;
    return 1;
}

// --- building the tables (shared by training and deserializing)

void et_tok_free(et_tokenizer *tok)
{
    if (!tok) return;
    free(tok->off);
    free(tok->bytes);
    free(tok->cps);
    free(tok->merges);
    free(tok->rank_key);
    free(tok->rank_val);
    free(tok);
}

/* Takes ownership of cps (vocab entries). Returns ET_ERR_FORMAT if they are not
 * strictly ascending valid code points. */
static et_status et__build_char(uint32_t *cps, uint32_t vocab, et_tokenizer **out)
{
    et_tokenizer *t;
    uint32_t i;
    size_t k = 0;
    if (vocab == 0 || vocab > ET_TOK_MAX_VOCAB) {
        free(cps);
        return ET_ERR_FORMAT;
    }
    for (i = 0; i < vocab; i++)
        if (!et__cp_ok(cps[i]) || (i && cps[i] <= cps[i - 1])) {
            free(cps);
            return ET_ERR_FORMAT;
        }
    t = calloc(1, sizeof *t);
    if (!t) {
        free(cps);
        return ET_ERR_NOMEM;
    }
    t->type = ET_TOK_CHAR;
    t->vocab = vocab;
    t->cps = cps;
    t->off = malloc(((size_t)vocab + 1) * sizeof *t->off);
    t->bytes = malloc((size_t)vocab * 4);
    if (!t->off || !t->bytes) {
        et_tok_free(t);
        return ET_ERR_NOMEM;
    }
    for (i = 0; i < 128; i++) t->ascii[i] = -1;
    for (i = 0; i < vocab; i++) {
        t->off[i] = k;
        k += et__utf8_put(cps[i], t->bytes + k);
        if (cps[i] < 128) t->ascii[cps[i]] = (int32_t)i;
    }
    t->off[vocab] = k;
    *out = t;
    return ET_OK;
}

/* Takes ownership of merges (2 * nm entries). ET_ERR_FORMAT if a merge names an id not
 * yet defined or repeats an earlier pair. */
static et_status et__build_bpe(uint16_t *merges, uint32_t nm, et_tokenizer **out)
{
    et_tokenizer *t;
    uint32_t i, v = 256 + nm;
    size_t total = 256;
    if (v > ET_TOK_MAX_VOCAB) {
        free(merges);
        return ET_ERR_FORMAT;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        free(merges);
        return ET_ERR_NOMEM;
    }
    t->type = ET_TOK_BPE;
    t->vocab = v;
    t->merges = merges;
    t->off = malloc(((size_t)v + 1) * sizeof *t->off);
    t->rank_cap = et__pow2_at_least(2 * (size_t)nm + 1);
    t->rank_key = malloc(t->rank_cap * sizeof *t->rank_key);
    t->rank_val = malloc(t->rank_cap * sizeof *t->rank_val);
    if (!t->off || !t->rank_key || !t->rank_val) goto nomem;
    for (i = 0; i < t->rank_cap; i++) t->rank_key[i] = ET__EMPTY;
    for (i = 0; i < 256; i++) t->off[i] = i;
    for (i = 0; i < nm; i++) {
        uint32_t a = merges[2 * i], b = merges[2 * i + 1], key = (a << 16) | b;
        size_t j;
        if (a >= 256 + i || b >= 256 + i) goto bad;
        for (j = et__hash32(key) & (t->rank_cap - 1); t->rank_key[j] != ET__EMPTY;
             j = (j + 1) & (t->rank_cap - 1))
            if (t->rank_key[j] == key) goto bad;
        t->rank_key[j] = key;
        t->rank_val[j] = i;
        t->off[256 + i] = total;
        total += (t->off[a + 1] - t->off[a]) + (t->off[b + 1] - t->off[b]);
        t->off[256 + i + 1] = total; /* provisional, so later merges can read lengths */
    }
    t->off[v] = total;
    t->bytes = malloc(total);
    if (!t->bytes) goto nomem;
    for (i = 0; i < 256; i++) t->bytes[i] = (unsigned char)i;
    for (i = 0; i < nm; i++) {
        uint32_t a = merges[2 * i], b = merges[2 * i + 1];
        size_t la = t->off[a + 1] - t->off[a];
        memcpy(t->bytes + t->off[256 + i], t->bytes + t->off[a], la);
        memcpy(t->bytes + t->off[256 + i] + la, t->bytes + t->off[b], t->off[b + 1] - t->off[b]);
    }
    *out = t;
    return ET_OK;
bad:
    et_tok_free(t);
    return ET_ERR_FORMAT;
nomem:
    et_tok_free(t);
    return ET_ERR_NOMEM;
}

static int32_t et__char_id(const et_tokenizer *t, uint32_t cp)
{
    uint32_t lo = 0, hi = t->vocab;
    if (cp < 128) return t->ascii[cp];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->cps[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->vocab && t->cps[lo] == cp ? (int32_t)lo : -1;
}

static uint32_t et__rank(const et_tokenizer *t, uint32_t a, uint32_t b)
{
    uint32_t key = (a << 16) | b;
    size_t j;
    for (j = et__hash32(key) & (t->rank_cap - 1); t->rank_key[j] != ET__EMPTY;
         j = (j + 1) & (t->rank_cap - 1))
        if (t->rank_key[j] == key) return t->rank_val[j];
    return ET__EMPTY;
}

// --- char training

et_status et_tok_train_char(const char *text, size_t n, et_tokenizer **tok)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned char *seen;
    uint32_t *cps, cp, v = 0;
    size_t i = 0;
    if (!tok || (!text && n) || n == 0) return ET_ERR_INVALID;
    seen = calloc(0x110000 / 8, 1);
    if (!seen) return ET_ERR_NOMEM;
    while (i < n) {
        i += et__utf8_next(s + i, n - i, &cp);
        seen[cp >> 3] |= (unsigned char)(1u << (cp & 7));
    }
    for (cp = 0; cp < 0x110000; cp++) v += (seen[cp >> 3] >> (cp & 7)) & 1u;
    if (v > ET_TOK_MAX_VOCAB) {
        free(seen);
        return ET_ERR_RANGE;
    }
    cps = malloc(v * sizeof *cps);
    if (!cps) {
        free(seen);
        return ET_ERR_NOMEM;
    }
    v = 0;
    for (cp = 0; cp < 0x110000; cp++)
        if ((seen[cp >> 3] >> (cp & 7)) & 1u) cps[v++] = cp;
    free(seen);
    return et__build_char(cps, v, tok);
}

// --- BPE pre-split (GPT-2's pattern on bytes)

enum { ET__WS, ET__LETTER, ET__DIGIT, ET__OTHER };

static int et__cls(unsigned char c)
{
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f') return ET__WS;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return ET__LETTER;
    if (c >= '0' && c <= '9') return ET__DIGIT;
    return ET__OTHER;
}

/* Length of the chunk at s[0] (n >= 1), following
 * 's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\sLN]+|\s+(?!\S)|\s+ */
static size_t et__chunk(const unsigned char *s, size_t n)
{
    size_t j;
    int c;
    if (s[0] == '\'' && n >= 2) {
        if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') ||
                       (s[1] == 'l' && s[2] == 'l')))
            return 3;
        if (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd') return 2;
    }
    c = et__cls(s[0]);
    j = 1;
    if (c == ET__WS) {
        while (j < n && et__cls(s[j]) == ET__WS) j++;
        if (j == n) return j;
        if (j >= 2) return j - 1; /* the last one may lead the next word */
        if (s[0] != ' ') return 1;
        c = et__cls(s[1]);
        j = 2;
    }
    while (j < n && et__cls(s[j]) == c) j++;
    return j;
}

// --- BPE training

typedef struct et__bpe {
    /* distinct chunks ("words") */
    uint16_t *sym;       /* symbols of all words, word w at sym[wstart[w] ..] */
    size_t *wstart;
    uint32_t *wlen;
    uint64_t *wcount;
    uint32_t *wstamp;    /* last merge that visited the word, + 1 */
    size_t nw;
    /* pairs: dense arrays indexed by pair id, plus a hash from key to id */
    uint32_t *pkey;
    int64_t *pcount;
    uint32_t **plist;    /* words that held the pair when it was counted */
    uint32_t *plen, *pcap;
    size_t np, pcapn;
    uint32_t *hkey, *hid;
    size_t hcap;
    /* lazy max-heap of (count, pair id) */
    int64_t *heapc;
    uint32_t *heapp;
    size_t nh, hcapn;
} et__bpe;

static int et__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 64;
    void *q;
    if (need <= *cap) return 0;
    while (c < need) c *= 2;
    q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void et__bpe_free(et__bpe *b)
{
    size_t i;
    free(b->sym), free(b->wstart), free(b->wlen), free(b->wcount), free(b->wstamp);
    for (i = 0; i < b->np; i++) free(b->plist[i]);
    free(b->pkey), free(b->pcount), free(b->plist), free(b->plen), free(b->pcap);
    free(b->hkey), free(b->hid), free(b->heapc), free(b->heapp);
}

/* Heap order: larger count first, then the smaller pair key (deterministic ties). */
static int et__heap_before(const et__bpe *b, size_t i, size_t j)
{
    if (b->heapc[i] != b->heapc[j]) return b->heapc[i] > b->heapc[j];
    return b->pkey[b->heapp[i]] < b->pkey[b->heapp[j]];
}

static void et__heap_swap(et__bpe *b, size_t i, size_t j)
{
    int64_t c = b->heapc[i];
    uint32_t p = b->heapp[i];
    b->heapc[i] = b->heapc[j], b->heapp[i] = b->heapp[j];
    b->heapc[j] = c, b->heapp[j] = p;
}

static int et__heap_push(et__bpe *b, uint32_t pid)
{
    size_t i, cap = b->hcapn;
    if (et__grow((void **)&b->heapc, &cap, b->nh + 1, sizeof *b->heapc)) return -1;
    if (et__grow((void **)&b->heapp, &b->hcapn, b->nh + 1, sizeof *b->heapp)) return -1;
    i = b->nh++;
    b->heapc[i] = b->pcount[pid];
    b->heapp[i] = pid;
    while (i > 0 && et__heap_before(b, i, (i - 1) / 2)) {
        et__heap_swap(b, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static void et__heap_pop(et__bpe *b)
{
    size_t i = 0;
    b->nh--;
    et__heap_swap(b, 0, b->nh);
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < b->nh && et__heap_before(b, l, m)) m = l;
        if (r < b->nh && et__heap_before(b, r, m)) m = r;
        if (m == i) break;
        et__heap_swap(b, i, m);
        i = m;
    }
}

static int et__pair_rehash(et__bpe *b, size_t cap)
{
    uint32_t *k = malloc(cap * sizeof *k), *id = malloc(cap * sizeof *id);
    size_t i;
    if (!k || !id) {
        free(k), free(id);
        return -1;
    }
    for (i = 0; i < cap; i++) k[i] = ET__EMPTY;
    for (i = 0; i < b->np; i++) {
        size_t j;
        for (j = et__hash32(b->pkey[i]) & (cap - 1); k[j] != ET__EMPTY; j = (j + 1) & (cap - 1)) {}
        k[j] = b->pkey[i];
        id[j] = (uint32_t)i;
    }
    free(b->hkey), free(b->hid);
    b->hkey = k, b->hid = id, b->hcap = cap;
    return 0;
}

/* Id of pair (a, b), created with count 0 if new; -1 on allocation failure. */
static int64_t et__pair_id(et__bpe *b, uint32_t x, uint32_t y)
{
    uint32_t key = (x << 16) | y;
    size_t j, cap;
    if (2 * (b->np + 1) > b->hcap && et__pair_rehash(b, et__pow2_at_least(4 * (b->np + 1))))
        return -1;
    for (j = et__hash32(key) & (b->hcap - 1); b->hkey[j] != ET__EMPTY; j = (j + 1) & (b->hcap - 1))
        if (b->hkey[j] == key) return b->hid[j];
    cap = b->pcapn;
    if (et__grow((void **)&b->pkey, &cap, b->np + 1, sizeof *b->pkey)) return -1;
    cap = b->pcapn;
    if (et__grow((void **)&b->pcount, &cap, b->np + 1, sizeof *b->pcount)) return -1;
    cap = b->pcapn;
    if (et__grow((void **)&b->plist, &cap, b->np + 1, sizeof *b->plist)) return -1;
    cap = b->pcapn;
    if (et__grow((void **)&b->plen, &cap, b->np + 1, sizeof *b->plen)) return -1;
    if (et__grow((void **)&b->pcap, &b->pcapn, b->np + 1, sizeof *b->pcap)) return -1;
    b->pkey[b->np] = key;
    b->pcount[b->np] = 0;
    b->plist[b->np] = NULL;
    b->plen[b->np] = 0;
    b->pcap[b->np] = 0;
    b->hkey[j] = key;
    b->hid[j] = (uint32_t)b->np;
    return (int64_t)b->np++;
}

/* Adds word w's count to pair (x, y), notes w under it, and offers it to the heap. */
static int et__pair_inc(et__bpe *b, uint32_t x, uint32_t y, uint32_t w)
{
    int64_t pid = et__pair_id(b, x, y);
    uint32_t n;
    if (pid < 0) return -1;
    b->pcount[pid] += (int64_t)b->wcount[w];
    n = b->plen[pid];
    if (n == 0 || b->plist[pid][n - 1] != w) {
        if (n == b->pcap[pid]) {
            uint32_t c = n ? 2 * n : 4;
            uint32_t *q = realloc(b->plist[pid], c * sizeof *q);
            if (!q) return -1;
            b->plist[pid] = q;
            b->pcap[pid] = c;
        }
        b->plist[pid][b->plen[pid]++] = w;
    }
    return et__heap_push(b, (uint32_t)pid);
}

static void et__pair_dec(et__bpe *b, uint32_t x, uint32_t y, uint32_t w)
{
    uint32_t key = (x << 16) | y;
    size_t j;
    for (j = et__hash32(key) & (b->hcap - 1); b->hkey[j] != ET__EMPTY; j = (j + 1) & (b->hcap - 1))
        if (b->hkey[j] == key) {
            b->pcount[b->hid[j]] -= (int64_t)b->wcount[w];
            return;
        }
}

/* Replaces every (x, y) in word w by id nt, left to right, updating neighbour pairs. */
static int et__merge_word(et__bpe *b, uint32_t w, uint32_t x, uint32_t y, uint32_t nt)
{
    uint16_t *s = b->sym + b->wstart[w];
    uint32_t L = b->wlen[w], i = 0, k = 0;
    while (i < L) {
        if (i + 1 < L && s[i] == x && s[i + 1] == y) {
            et__pair_dec(b, x, y, w);
            if (k > 0) {
                et__pair_dec(b, s[k - 1], x, w);
                if (et__pair_inc(b, s[k - 1], nt, w)) return -1;
            }
            if (i + 2 < L) {
                et__pair_dec(b, y, s[i + 2], w);
                if (et__pair_inc(b, nt, s[i + 2], w)) return -1;
            }
            s[k++] = (uint16_t)nt;
            i += 2;
        } else
            s[k++] = s[i++];
    }
    b->wlen[w] = k;
    return 0;
}

/* Splits the text into chunks and gives each distinct chunk a word with its count. */
static int et__bpe_words(et__bpe *b, const unsigned char *s, size_t n)
{
    size_t hcap = 1024, used = 0, i = 0, wcap = 0, nsym = 0, cap;
    uint32_t *slot = malloc(hcap * sizeof *slot); /* word id + 1, 0 if free */
    const unsigned char **wtext = NULL;           /* first occurrence of each word */
    uint64_t *whash = NULL;
    int rc = -1;
    if (!slot) return -1;
    memset(slot, 0, hcap * sizeof *slot);
    while (i < n) {
        size_t len = et__chunk(s + i, n - i), j, q;
        uint64_t h = 1469598103934665603ull;
        for (q = 0; q < len; q++) h = (h ^ s[i + q]) * 1099511628211ull;
        for (j = (size_t)h & (hcap - 1); slot[j]; j = (j + 1) & (hcap - 1)) {
            uint32_t w = slot[j] - 1;
            if (whash[w] == h && b->wlen[w] == len && memcmp(wtext[w], s + i, len) == 0) break;
        }
        if (slot[j]) {
            b->wcount[slot[j] - 1]++;
        } else {
            size_t w = b->nw;
            if (len > 0xffffffffu) goto out;
            cap = wcap;
            if (et__grow((void **)&wtext, &cap, w + 1, sizeof *wtext)) goto out;
            cap = wcap;
            if (et__grow((void **)&whash, &cap, w + 1, sizeof *whash)) goto out;
            cap = wcap;
            if (et__grow((void **)&b->wstart, &cap, w + 1, sizeof *b->wstart)) goto out;
            cap = wcap;
            if (et__grow((void **)&b->wlen, &cap, w + 1, sizeof *b->wlen)) goto out;
            if (et__grow((void **)&b->wcount, &wcap, w + 1, sizeof *b->wcount)) goto out;
            wtext[w] = s + i;
            whash[w] = h;
            b->wstart[w] = nsym;
            b->wlen[w] = (uint32_t)len;
            b->wcount[w] = 1;
            nsym += len;
            slot[j] = (uint32_t)w + 1;
            b->nw++;
            if (2 * ++used > hcap) { /* rehash */
                size_t nc = 2 * hcap, k;
                uint32_t *ns = calloc(nc, sizeof *ns);
                if (!ns) goto out;
                for (k = 0; k < hcap; k++) {
                    size_t t;
                    if (!slot[k]) continue;
                    for (t = (size_t)whash[slot[k] - 1] & (nc - 1); ns[t]; t = (t + 1) & (nc - 1)) {}
                    ns[t] = slot[k];
                }
                free(slot);
                slot = ns;
                hcap = nc;
            }
        }
        i += len;
    }
    b->sym = malloc((nsym ? nsym : 1) * sizeof *b->sym);
    b->wstamp = calloc(b->nw ? b->nw : 1, sizeof *b->wstamp);
    if (!b->sym || !b->wstamp) goto out;
    for (i = 0; i < b->nw; i++) {
        uint32_t q;
        for (q = 0; q < b->wlen[i]; q++) b->sym[b->wstart[i] + q] = wtext[i][q];
    }
    rc = 0;
out:
    free(slot);
    free(wtext);
    free(whash);
    return rc;
}

et_status et_tok_train_bpe(const char *text, size_t n, uint32_t vocab, et_tokenizer **tok)
{
    et__bpe b;
    uint16_t *merges = NULL;
    uint32_t nm = 0, want, w;
    size_t i;
    if (!tok || (!text && n)) return ET_ERR_INVALID;
    if (vocab < 256 || vocab > ET_TOK_MAX_VOCAB) return ET_ERR_RANGE;
    memset(&b, 0, sizeof b);
    want = vocab - 256;
    merges = malloc((want ? 2 * (size_t)want : 1) * sizeof *merges);
    if (!merges || et__bpe_words(&b, (const unsigned char *)text, n)) goto nomem;
    for (w = 0; w < b.nw; w++) {
        const uint16_t *s = b.sym + b.wstart[w];
        for (i = 0; i + 1 < b.wlen[w]; i++)
            if (et__pair_inc(&b, s[i], s[i + 1], w)) goto nomem;
    }
    while (nm < want && b.nh > 0) {
        uint32_t pid = b.heapp[0], x, y, nt = 256 + nm, k, len;
        int64_t c = b.heapc[0];
        uint32_t *list;
        et__heap_pop(&b);
        if (c != b.pcount[pid]) {
            /* stale entry; keep one entry >= the real count for every live pair */
            if (b.pcount[pid] > 0 && c > b.pcount[pid] && et__heap_push(&b, pid)) goto nomem;
            continue;
        }
        if (c <= 0) continue;
        x = b.pkey[pid] >> 16;
        y = b.pkey[pid] & 0xffff;
        merges[2 * nm] = (uint16_t)x;
        merges[2 * nm + 1] = (uint16_t)y;
        /* the pair's word list cannot grow while it is merged (no new (x, y) appears) */
        list = b.plist[pid];
        len = b.plen[pid];
        for (k = 0; k < len; k++) {
            uint32_t wd = list[k];
            if (b.wstamp[wd] == nm + 1) continue;
            b.wstamp[wd] = nm + 1;
            if (et__merge_word(&b, wd, x, y, nt)) goto nomem;
        }
        free(b.plist[pid]);
        b.plist[pid] = NULL;
        b.plen[pid] = b.pcap[pid] = 0;
        b.pcount[pid] = 0;
        nm++;
    }
    et__bpe_free(&b);
    return et__build_bpe(merges, nm, tok);
nomem:
    et__bpe_free(&b);
    free(merges);
    return ET_ERR_NOMEM;
}

// --- encode / decode

typedef struct et__sink {
    uint16_t *u16;
    int32_t *i32;
    size_t cap, k;
} et__sink;

static int et__emit(et__sink *o, uint32_t id)
{
    if (o->u16 || o->i32) {
        if (o->k >= o->cap) return -1;
        if (o->u16) o->u16[o->k] = (uint16_t)id;
        else o->i32[o->k] = (int32_t)id;
    }
    o->k++;
    return 0;
}

/* Merges one chunk in place, lowest rank first, by rescanning: best for the short chunks
 * that are nearly all of real text. Returns the new length. */
static size_t et__bpe_short(const et_tokenizer *t, uint16_t *w, size_t L)
{
    while (L > 1) {
        uint32_t best = ET__EMPTY, x, y;
        size_t q, k = 0;
        for (q = 0; q + 1 < L; q++) {
            uint32_t r = et__rank(t, w[q], w[q + 1]);
            if (r < best) best = r;
        }
        if (best == ET__EMPTY) break;
        x = t->merges[2 * best];
        y = t->merges[2 * best + 1];
        for (q = 0; q < L;) {
            if (q + 1 < L && w[q] == x && w[q + 1] == y) {
                w[k++] = (uint16_t)(256 + best);
                q += 2;
            } else
                w[k++] = w[q++];
        }
        L = k;
    }
    return L;
}

/* Scratch for et__bpe_long, grown as needed and kept across the chunks of one call. */
typedef struct et__bpe_scratch {
    int32_t *next, *prev;
    uint64_t *heap; /* (rank << 32 | position), a min-heap */
    size_t cap, hcap;
} et__bpe_scratch;

static int et__minheap_push(et__bpe_scratch *z, size_t *nh, uint64_t key)
{
    size_t i;
    if (et__grow((void **)&z->heap, &z->hcap, *nh + 1, sizeof *z->heap)) return -1;
    i = (*nh)++;
    while (i > 0 && z->heap[(i - 1) / 2] > key) {
        z->heap[i] = z->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    z->heap[i] = key;
    return 0;
}

static uint64_t et__minheap_pop(et__bpe_scratch *z, size_t *nh)
{
    uint64_t top = z->heap[0], last = z->heap[--*nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *nh) break;
        if (c + 1 < *nh && z->heap[c + 1] < z->heap[c]) c++;
        if (z->heap[c] >= last) break;
        z->heap[i] = z->heap[c];
        i = c;
    }
    if (*nh) z->heap[i] = last;
    return top;
}

/* The same result as et__bpe_short in O(L log L), for long chunks (a line of 10^5
 * letters must not cost 10^5 rescans): a linked list of symbols and a heap of candidate
 * pairs ordered by (rank, position). All pairs of one rank pop before any pair made by
 * that merge (those have higher ranks), left to right, as the rescan does them. Returns
 * the new length, or 0 on allocation failure. */
static size_t et__bpe_long(const et_tokenizer *t, uint16_t *w, size_t L, et__bpe_scratch *z)
{
    size_t nh = 0, i, k, cap = z->cap;
    int32_t p;
    if (L > 0x7fffffff) return 0;
    if (et__grow((void **)&z->next, &cap, L, sizeof *z->next)) return 0;
    if (et__grow((void **)&z->prev, &z->cap, L, sizeof *z->prev)) return 0;
    for (i = 0; i < L; i++) {
        z->next[i] = i + 1 < L ? (int32_t)(i + 1) : -1;
        z->prev[i] = (int32_t)i - 1;
    }
    for (i = 0; i + 1 < L; i++) {
        uint32_t r = et__rank(t, w[i], w[i + 1]);
        if (r != ET__EMPTY && et__minheap_push(z, &nh, (uint64_t)r << 32 | i)) return 0;
    }
    while (nh > 0) {
        uint64_t key = et__minheap_pop(z, &nh);
        uint32_t r = (uint32_t)(key >> 32);
        int32_t q, pos = (int32_t)(key & 0xffffffffu);
        if (w[pos] == 0xffff || (q = z->next[pos]) < 0 || et__rank(t, w[pos], w[q]) != r)
            continue; /* stale: the pair here has changed */
        w[pos] = (uint16_t)(256 + r);
        w[q] = 0xffff; /* dead; no id is 0xffff */
        z->next[pos] = z->next[q];
        if (z->next[q] >= 0) z->prev[z->next[q]] = pos;
        if ((p = z->prev[pos]) >= 0) {
            uint32_t r2 = et__rank(t, w[p], w[pos]);
            if (r2 != ET__EMPTY && et__minheap_push(z, &nh, (uint64_t)r2 << 32 | (uint32_t)p)) return 0;
        }
        if ((q = z->next[pos]) >= 0) {
            uint32_t r2 = et__rank(t, w[pos], w[q]);
            if (r2 != ET__EMPTY && et__minheap_push(z, &nh, (uint64_t)r2 << 32 | (uint32_t)pos))
                return 0;
        }
    }
    for (k = 0, p = 0; p >= 0; p = z->next[p]) w[k++] = w[p];
    return k;
}

/* Chunks longer than this take the heap path. */
#define ET__BPE_SHORT 48

static et_status et__encode(const et_tokenizer *t, const char *text, size_t n, et__sink *o,
                            size_t *count, unsigned flags, size_t *unknown)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, unk = 0;
    et_status rc = ET_OK;
    if (!t || (!text && n) || (!o->u16 && !o->i32 && !count)) return ET_ERR_INVALID;
    if (t->type == ET_TOK_CHAR) {
        while (i < n) {
            uint32_t cp;
            int32_t id;
            i += et__utf8_next(s + i, n - i, &cp);
            id = et__char_id(t, cp);
            if (id < 0) {
                if (!(flags & ET_TOK_SKIP_UNKNOWN)) {
                    rc = ET_ERR_RANGE;
                    break;
                }
                unk++;
                continue;
            }
            if (et__emit(o, (uint32_t)id)) {
                rc = ET_ERR_NOMEM;
                break;
            }
        }
    } else {
        uint16_t *work = NULL;
        size_t wcap = 0;
        et__bpe_scratch z;
        memset(&z, 0, sizeof z);
        while (i < n && rc == ET_OK) {
            size_t len = et__chunk(s + i, n - i), L, q;
            if (et__grow((void **)&work, &wcap, len, sizeof *work)) {
                rc = ET_ERR_NOMEM;
                break;
            }
            for (q = 0; q < len; q++) work[q] = s[i + q];
            L = len <= ET__BPE_SHORT ? et__bpe_short(t, work, len) : et__bpe_long(t, work, len, &z);
            if (L == 0) {
                rc = ET_ERR_NOMEM;
                break;
            }
            for (q = 0; q < L; q++)
                if (et__emit(o, work[q])) {
                    rc = ET_ERR_NOMEM;
                    break;
                }
            i += len;
        }
        free(work);
        free(z.next), free(z.prev), free(z.heap);
    }
    if (count) *count = o->k;
    if (unknown) *unknown = unk;
    return rc;
}

et_status et_tok_encode(const et_tokenizer *tok, const char *text, size_t n, uint16_t *ids,
                        size_t cap, size_t *count, unsigned flags, size_t *unknown)
{
    et__sink o = {ids, NULL, cap, 0};
    return et__encode(tok, text, n, &o, count, flags, unknown);
}

et_status et_tok_encode_i32(const et_tokenizer *tok, const char *text, size_t n, int32_t *ids,
                            size_t cap, size_t *count, unsigned flags, size_t *unknown)
{
    et__sink o = {NULL, ids, cap, 0};
    return et__encode(tok, text, n, &o, count, flags, unknown);
}

static et_status et__decode(const et_tokenizer *t, const uint16_t *u16, const int32_t *i32,
                            size_t n, char *out, size_t cap, size_t *out_n)
{
    size_t i, k = 0;
    et_status rc = ET_OK;
    if (!t || !out_n || (!u16 && !i32 && n)) return ET_ERR_INVALID;
    for (i = 0; i < n; i++) {
        int64_t id = u16 ? (int64_t)u16[i] : (int64_t)i32[i];
        size_t len;
        if (id < 0 || id >= (int64_t)t->vocab) {
            rc = ET_ERR_RANGE;
            break;
        }
        len = t->off[id + 1] - t->off[id];
        if (out) {
            if (cap - k < len) {
                rc = ET_ERR_NOMEM;
                break;
            }
            memcpy(out + k, t->bytes + t->off[id], len);
        }
        k += len;
    }
    *out_n = k;
    return rc;
}

et_status et_tok_decode(const et_tokenizer *tok, const uint16_t *ids, size_t n, char *out,
                        size_t cap, size_t *out_n)
{
    return et__decode(tok, ids, NULL, n, out, cap, out_n);
}

et_status et_tok_decode_i32(const et_tokenizer *tok, const int32_t *ids, size_t n, char *out,
                            size_t cap, size_t *out_n)
{
    return et__decode(tok, NULL, ids, n, out, cap, out_n);
}

uint32_t et_tok_vocab_size(const et_tokenizer *tok) { return tok ? tok->vocab : 0; }

et_tok_type et_tok_type_of(const et_tokenizer *tok) { return tok ? tok->type : (et_tok_type)0; }

int32_t et_tok_char_codepoint(const et_tokenizer *tok, uint32_t id)
{
    if (!tok || tok->type != ET_TOK_CHAR || id >= tok->vocab) return -1;
    return (int32_t)tok->cps[id];
}

// --- serialization

static const uint32_t et__crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
    0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

/* CRC-32 (IEEE 802.3, as zlib), four bits at a time. */
static uint32_t et__crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ et__crc_nibble[c & 15];
        c = (c >> 4) ^ et__crc_nibble[c & 15];
    }
    return c ^ 0xffffffffu;
}

static void et__put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static uint32_t et__get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

et_status et_tok_serialize(const et_tokenizer *tok, void **blob, size_t *n)
{
    unsigned char *p;
    size_t payload, total, i;
    if (!tok || !blob || !n) return ET_ERR_INVALID;
    payload = tok->type == ET_TOK_CHAR ? 4 * (size_t)tok->vocab : 4 * (size_t)(tok->vocab - 256);
    total = ET__HDR + payload + 4;
    p = malloc(total);
    if (!p) return ET_ERR_NOMEM;
    memcpy(p, ET__MAGIC, 4);
    et__put32(p + 4, ET__VERSION);
    et__put32(p + 8, (uint32_t)tok->type);
    et__put32(p + 12, tok->vocab);
    et__put32(p + 16, (uint32_t)payload);
    if (tok->type == ET_TOK_CHAR)
        for (i = 0; i < tok->vocab; i++) et__put32(p + ET__HDR + 4 * i, tok->cps[i]);
    else
        for (i = 0; i < tok->vocab - 256u; i++) {
            unsigned char *q = p + ET__HDR + 4 * i;
            q[0] = (unsigned char)tok->merges[2 * i], q[1] = (unsigned char)(tok->merges[2 * i] >> 8);
            q[2] = (unsigned char)tok->merges[2 * i + 1];
            q[3] = (unsigned char)(tok->merges[2 * i + 1] >> 8);
        }
    et__put32(p + ET__HDR + payload, et__crc32(p, ET__HDR + payload));
    *blob = p;
    *n = total;
    return ET_OK;
}

/* et_tok_deserialize() with the source's name for messages. */
static et_status et__deserialize(const void *blob, size_t n, et_tokenizer **tok, et_error *err,
                                 const char *what)
{
    const unsigned char *p = blob;
    uint32_t version, type, vocab, payload, want, crc, i;
    et_status rc;
    if (!tok || (!blob && n)) return et_error_set(err, ET_ERR_INVALID, "%s: no tokenizer data", what);
    if (n >= 4 && memcmp(p, ET__MAGIC, 4) != 0)
        return et_error_set(err, ET_ERR_FORMAT,
                            "%s: not an edgetrain tokenizer (magic %02x %02x %02x %02x, expected "
                            "\"" ET__MAGIC "\")", what, p[0], p[1], p[2], p[3]);
    if (n < ET__HDR + 4)
        return et_error_set(err, ET_ERR_TRUNCATED,
                            "%s: truncated: %zu bytes, a tokenizer header and CRC need %u", what,
                            n, ET__HDR + 4);
    version = et__get32(p + 4), type = et__get32(p + 8);
    vocab = et__get32(p + 12), payload = et__get32(p + 16);
    if (version != ET__VERSION)
        return et_error_set(err, ET_ERR_FORMAT, "%s: tokenizer version %u, expected %u", what,
                            version, ET__VERSION);
    if (type != ET_TOK_CHAR && type != ET_TOK_BPE)
        return et_error_set(err, ET_ERR_FORMAT, "%s: tokenizer type %u, expected 1 (char) or 2 (bpe)",
                            what, type);
    if (vocab > ET_TOK_MAX_VOCAB || (type == ET_TOK_CHAR && vocab == 0) ||
        (type == ET_TOK_BPE && vocab < 256))
        return et_error_set(err, ET_ERR_FORMAT, "%s: vocab size %u out of range for a %s tokenizer",
                            what, vocab, type == ET_TOK_CHAR ? "char" : "bpe");
    want = type == ET_TOK_CHAR ? 4 * vocab : 4 * (vocab - 256);
    if (payload != want)
        return et_error_set(err, ET_ERR_FORMAT, "%s: payload size %u, expected %u for vocab %u",
                            what, payload, want, vocab);
    if (n < (size_t)ET__HDR + payload + 4)
        return et_error_set(err, ET_ERR_TRUNCATED, "%s: truncated: %zu bytes, expected %zu", what,
                            n, (size_t)ET__HDR + payload + 4);
    if (n > (size_t)ET__HDR + payload + 4)
        return et_error_set(err, ET_ERR_FORMAT, "%s: %zu trailing bytes after the tokenizer",
                            what, n - ((size_t)ET__HDR + payload + 4));
    crc = et__crc32(p, ET__HDR + payload);
    if (crc != et__get32(p + ET__HDR + payload))
        return et_error_set(err, ET_ERR_CRC, "%s: CRC-32 mismatch (stored %08x, computed %08x)",
                            what, et__get32(p + ET__HDR + payload), crc);
    if (type == ET_TOK_CHAR) {
        uint32_t *cps = malloc(vocab * sizeof *cps);
        if (!cps) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", what);
        for (i = 0; i < vocab; i++) cps[i] = et__get32(p + ET__HDR + 4 * i);
        rc = et__build_char(cps, vocab, tok);
    } else {
        uint16_t *m = malloc((vocab > 256 ? 2 * (size_t)(vocab - 256) : 1) * sizeof *m);
        if (!m) return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", what);
        for (i = 0; i < 2 * (vocab - 256); i++)
            m[i] = (uint16_t)(p[ET__HDR + 2 * i] | p[ET__HDR + 2 * i + 1] << 8);
        rc = et__build_bpe(m, vocab - 256, tok);
    }
    if (rc == ET_ERR_FORMAT)
        return et_error_set(err, rc, "%s: %s table is inconsistent", what,
                            type == ET_TOK_CHAR ? "code point" : "merge");
    if (rc != ET_OK) return et_error_set(err, rc, "%s: out of memory", what);
    return ET_OK;
}

et_status et_tok_deserialize(const void *blob, size_t n, et_tokenizer **tok, et_error *err)
{
    return et__deserialize(blob, n, tok, err, "tokenizer blob");
}

et_status et_tok_save(const et_tokenizer *tok, const char *path, et_error *err)
{
    void *blob;
    size_t n, plen;
    char *tmp;
    FILE *f;
    et_status rc;
    int ok;
    if (!tok || !path) return et_error_set(err, ET_ERR_INVALID, "et_tok_save: no tokenizer or path");
    rc = et_tok_serialize(tok, &blob, &n);
    if (rc) return et_error_set(err, rc, "%s: cannot serialize the tokenizer", path);
    plen = strlen(path);
    tmp = malloc(plen + 5);
    if (!tmp) {
        free(blob);
        return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) {
        rc = et_error_set(err, ET_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    ok = fwrite(blob, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        rc = et_error_set(err, ET_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = et_error_set(err, ET_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                          strerror(errno));
        remove(tmp);
        goto out;
    }
    rc = ET_OK;
out:
    free(tmp);
    free(blob);
    return rc;
}

et_status et_tok_load(const char *path, et_tokenizer **tok, et_error *err)
{
    FILE *f;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    et_status rc;
    if (!path || !tok) return et_error_set(err, ET_ERR_INVALID, "et_tok_load: no path or output");
    f = fopen(path, "rb");
    if (!f) return et_error_set(err, ET_ERR_IO, "%s: cannot open tokenizer: %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (n == cap && et__grow((void **)&buf, &cap, n + 65536, 1)) {
            fclose(f);
            free(buf);
            return et_error_set(err, ET_ERR_NOMEM, "%s: out of memory", path);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return et_error_set(err, ET_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    rc = et__deserialize(buf, n, tok, err, path);
    free(buf);
    return rc;
}
