/* sys_timing.c - what a GEMM costs on the array, from its shape alone: the fold
 * mapping, SCALE-Sim's closed-form compute cycles, the double-buffered schedule, SRAM
 * accesses, DRAM traffic, memory stalls and energy. docs/SYSTOLIC.md derives each rule.
 *
 * Folds run in SCALE-Sim's order: column folds outer, row folds inner. The memory model
 * is an event model over folds: each SRAM is double-buffered, so the operands of fold
 * f are fetched while fold f-1 computes (unless a slice is larger than half its SRAM:
 * then the fetch waits for fold f-1 to end), results are written back after their fold,
 * and one DRAM channel serves reads and writes in issue order. A fold starts when the
 * array is free and its operands have arrived; the stall is the wait.
 * Deliberately avoided: bank conflicts, DRAM latency and row-buffer effects, replacement
 * policies finer than "the whole operand fits, or only consecutive folds share a slice".
 */
#include "et_systolic.h"

#define ACC_BYTES 4

void et_sys_config_default(et_sys_config *c)
{
    c->rows = 16;
    c->cols = 16;
    c->dataflow = ET_SYS_WS;
    c->dtype = ET_SYS_FP32;
    c->sram_bytes[ET_SYS_SRAM_A] = 1024u * 1024u;
    c->sram_bytes[ET_SYS_SRAM_B] = 1024u * 1024u;
    c->sram_bytes[ET_SYS_SRAM_C] = 512u * 1024u;
    c->dram_bytes_per_cycle = 32.0;
    c->clock_mhz = 1000.0;
    c->double_buffer = 0;
    c->energy = et_sys_energy_default(ET_SYS_FP32);
}

et_sys_energy et_sys_energy_default(et_sys_dtype dt)
{
    et_sys_energy e;
    e.mac_pj = dt == ET_SYS_INT8 ? 0.3 : 4.6;
    e.sram_pj_per_byte = 2.5;
    e.dram_pj_per_byte = 160.0;
    return e;
}

et_status et_sys_config_check(const et_sys_config *c)
{
    int k;
    if (!c || c->rows < 1 || c->cols < 1 || c->rows > 4096 || c->cols > 4096) return ET_ERR_INVALID;
    if (c->dataflow != ET_SYS_OS && c->dataflow != ET_SYS_WS && c->dataflow != ET_SYS_IS)
        return ET_ERR_INVALID;
    if (c->dtype != ET_SYS_FP32 && c->dtype != ET_SYS_INT8) return ET_ERR_INVALID;
    for (k = 0; k < ET_SYS_NSRAM; k++)
        if (c->sram_bytes[k] == 0) return ET_ERR_INVALID;
    if (!(c->dram_bytes_per_cycle >= 0.0) || !(c->clock_mhz > 0.0)) return ET_ERR_INVALID;
    if (!(c->energy.mac_pj >= 0.0) || !(c->energy.sram_pj_per_byte >= 0.0) ||
        !(c->energy.dram_pj_per_byte >= 0.0))
        return ET_ERR_INVALID;
    return ET_OK;
}

int et_sys_word_bytes(et_sys_dtype dt) { return dt == ET_SYS_INT8 ? 1 : 4; }

const char *et_sys_dataflow_name(et_sys_dataflow df)
{
    return df == ET_SYS_OS ? "os" : df == ET_SYS_WS ? "ws" : df == ET_SYS_IS ? "is" : "?";
}

const char *et_sys_dtype_name(et_sys_dtype dt)
{
    return dt == ET_SYS_INT8 ? "int8" : dt == ET_SYS_FP32 ? "fp32" : "?";
}

// --- the closed form

et_status et_sys_map_gemm(const et_sys_config *c, int M, int N, int K, et_sys_map *m)
{
    uint64_t R, C;
    if (et_sys_config_check(c) != ET_OK || !m || M < 1 || N < 1 || K < 1) return ET_ERR_INVALID;
    R = (uint64_t)c->rows;
    C = (uint64_t)c->cols;
    switch (c->dataflow) {
    case ET_SYS_OS: m->Sr = M; m->Sc = N; m->T = K; break;
    case ET_SYS_WS: m->Sr = K; m->Sc = N; m->T = M; break;
    default:        m->Sr = K; m->Sc = M; m->T = N; break;
    }
    m->row_folds = (int)(((uint64_t)m->Sr + R - 1) / R);
    m->col_folds = (int)(((uint64_t)m->Sc + C - 1) / C);
    /* OS: operands skew in over R-1 and C-1 cycles around the T-long stream; WS and IS
     * first shift the stationary tile in from the top (R cycles) */
    m->fold_cycles = (c->dataflow == ET_SYS_OS ? R : 2 * R) + C + (uint64_t)m->T - 2;
    m->db_step = (uint64_t)m->T > R ? (uint64_t)m->T : R;
    return ET_OK;
}

uint64_t et_sys_compute_cycles(const et_sys_config *c, int M, int N, int K)
{
    et_sys_map m;
    if (et_sys_map_gemm(c, M, N, K, &m) != ET_OK) return 0;
    return (uint64_t)m.row_folds * (uint64_t)m.col_folds * m.fold_cycles;
}

uint64_t et_sys_compute_cycles_db(const et_sys_config *c, int M, int N, int K)
{
    et_sys_map m;
    if (et_sys_map_gemm(c, M, N, K, &m) != ET_OK) return 0;
    return m.fold_cycles + ((uint64_t)m.row_folds * (uint64_t)m.col_folds - 1) * m.db_step;
}

// --- the memory event model

/* How an operand's slice changes from fold to fold: with the row-fold index i (inner
 * loop), the column-fold index j (outer loop), or every fold (a stationary tile). */
enum { BY_I, BY_J, UNIQUE };

typedef struct {
    uint64_t arr_free;   /* cycle the array finishes its current fold */
    uint64_t prev_start; /* start cycle of the previous fold */
    uint64_t dram_free;  /* cycle the DRAM channel is next idle */
    uint64_t pending_wr; /* bytes the previous fold leaves to write back */
    uint64_t busy;       /* sum of fold durations */
} timeline;

static uint64_t xfer_cycles(double bw, uint64_t bytes)
{
    double q;
    uint64_t n;
    if (bw <= 0.0 || bytes == 0) return 0;
    q = (double)bytes / bw;
    n = (uint64_t)q;
    return (double)n < q ? n + 1 : n;
}

static void tl_write(timeline *tl, double bw)
{
    uint64_t s;
    if (!tl->pending_wr) return;
    s = tl->dram_free > tl->arr_free ? tl->dram_free : tl->arr_free;
    tl->dram_free = s + xfer_cycles(bw, tl->pending_wr);
    tl->pending_wr = 0;
}

/* One fold: fetch its operands (issued when the previous fold started, or when it ended
 * if the fetch is serial), start it, and queue the previous fold's write-back in issue
 * order (a serial fetch is issued with that write-back, which goes first). */
static void tl_fold(timeline *tl, double bw, uint64_t rd, int serial, uint64_t wr, uint64_t dur)
{
    uint64_t issue = serial ? tl->arr_free : tl->prev_start, start, s;
    if (serial) tl_write(tl, bw);
    if (rd) {
        s = tl->dram_free > issue ? tl->dram_free : issue;
        tl->dram_free = s + xfer_cycles(bw, rd);
    }
    start = tl->arr_free;
    if (rd && tl->dram_free > start) start = tl->dram_free;
    tl_write(tl, bw);
    tl->prev_start = start;
    tl->arr_free = start + dur;
    tl->pending_wr = wr;
    tl->busy += dur;
}

/* Stall cycles once the last write-back is done. */
static uint64_t tl_finish(timeline *tl, double bw)
{
    uint64_t end = tl->arr_free;
    if (tl->pending_wr) {
        uint64_t s = tl->dram_free > end ? tl->dram_free : end;
        end = s + xfer_cycles(bw, tl->pending_wr);
    }
    return end - tl->busy;
}

et_status et_sys_gemm_timing(const et_sys_config *c, int M, int N, int K, et_sys_stats *st)
{
    et_sys_map m;
    timeline plain = {0, 0, 0, 0, 0}, db = {0, 0, 0, 0, 0};
    uint64_t wi, R = (uint64_t)c->rows, Cc = (uint64_t)c->cols, F, f = 0, pre, post, T;
    uint64_t total[2], half[ET_SYS_NSRAM];
    int kind[2], i, j, x, resident[2];
    double bw = c->dram_bytes_per_cycle;
    et_status s;
    if ((s = et_sys_map_gemm(c, M, N, K, &m)) != ET_OK) return s;
    if (!st) return ET_ERR_INVALID;
    wi = (uint64_t)et_sys_word_bytes(c->dtype);
    T = (uint64_t)m.T;
    F = (uint64_t)m.row_folds * (uint64_t)m.col_folds;
    for (x = 0; x < ET_SYS_NSRAM; x++) half[x] = c->sram_bytes[x] / 2;
    total[0] = (uint64_t)M * (uint64_t)K * wi;
    total[1] = (uint64_t)K * (uint64_t)N * wi;
    kind[0] = c->dataflow == ET_SYS_IS ? UNIQUE : BY_I;
    kind[1] = c->dataflow == ET_SYS_OS ? BY_J : c->dataflow == ET_SYS_WS ? UNIQUE : BY_I;
    for (x = 0; x < 2; x++) resident[x] = total[x] <= half[x];
    pre = c->dataflow == ET_SYS_OS ? 0 : R;
    post = m.fold_cycles - pre - m.db_step;

    for (j = 0; j < m.col_folds; j++) {
        for (i = 0; i < m.row_folds; i++, f++) {
            uint64_t ru = (uint64_t)m.Sr - (uint64_t)i * R, cu = (uint64_t)m.Sc - (uint64_t)j * Cc;
            uint64_t slice[2], out_tile, spill, rd = 0, wr = 0, dur;
            int serial = 0, last_i = i == m.row_folds - 1;
            if (ru > R) ru = R;
            if (cu > Cc) cu = Cc;
            switch (c->dataflow) {
            case ET_SYS_OS:
                slice[0] = ru * (uint64_t)K * wi; slice[1] = (uint64_t)K * cu * wi;
                out_tile = ru * cu * ACC_BYTES;
                break;
            case ET_SYS_WS:
                slice[0] = (uint64_t)M * ru * wi; slice[1] = ru * cu * wi;
                out_tile = (uint64_t)M * cu * ACC_BYTES;
                break;
            default:
                slice[0] = ru * cu * wi; slice[1] = ru * (uint64_t)N * wi;
                out_tile = cu * (uint64_t)N * ACC_BYTES;
                break;
            }
            /* the array reads each operand slice once per fold */
            st->sram_read[ET_SYS_SRAM_A] += slice[0];
            st->sram_read[ET_SYS_SRAM_B] += slice[1];
            st->pe_folds += ru * cu;
            for (x = 0; x < 2; x++) {
                int fetch;
                if (kind[x] == UNIQUE) fetch = 1;
                else if (resident[x]) fetch = kind[x] == BY_I ? j == 0 : i == 0;
                else fetch = kind[x] == BY_I ? (m.row_folds > 1 || j == 0) : i == 0;
                if (!fetch) continue;
                rd += slice[x];
                st->dram_read[x] += slice[x];
                st->sram_write[x] += slice[x];
                if (slice[x] > half[x]) serial = 1;
            }
            /* results: written into the accumulators (read-modify-write after the first
             * K fold); complete tiles are read out to DRAM. Of a partial tile larger than
             * half the C SRAM, the part beyond it spills to DRAM after each K fold and
             * comes back before the next */
            spill = out_tile > half[ET_SYS_SRAM_C] ? out_tile - half[ET_SYS_SRAM_C] : 0;
            st->sram_write[ET_SYS_SRAM_C] += out_tile;
            if (c->dataflow != ET_SYS_OS && i > 0) st->sram_read[ET_SYS_SRAM_C] += out_tile;
            if (c->dataflow == ET_SYS_OS || last_i) wr += out_tile;
            else wr += spill;
            if (c->dataflow != ET_SYS_OS && i > 0 && spill) {
                rd += spill;
                st->dram_read[ET_SYS_SRAM_C] += spill;
                st->sram_write[ET_SYS_SRAM_C] += spill;
                serial = 1;
            }
            st->sram_read[ET_SYS_SRAM_C] += wr;
            st->dram_write[ET_SYS_SRAM_C] += wr;
            tl_fold(&plain, bw, rd, serial, wr, m.fold_cycles);
            dur = m.db_step + (f == 0 ? pre : 0) + (f == F - 1 ? post : 0);
            tl_fold(&db, bw, rd, serial, wr, dur);
        }
    }
    st->gemms += 1;
    st->folds += F;
    st->macs += (uint64_t)M * (uint64_t)N * (uint64_t)K;
    st->compute_cycles += F * m.fold_cycles;
    st->stream_cycles += F * T;
    st->db_compute_cycles += m.fold_cycles + (F - 1) * m.db_step;
    st->stall_cycles += tl_finish(&plain, bw);
    st->db_stall_cycles += tl_finish(&db, bw);
    return ET_OK;
}

// --- derived figures

void et_sys_stats_add(et_sys_stats *d, const et_sys_stats *s)
{
    int k;
    d->gemms += s->gemms;
    d->folds += s->folds;
    d->macs += s->macs;
    d->pe_folds += s->pe_folds;
    d->compute_cycles += s->compute_cycles;
    d->stream_cycles += s->stream_cycles;
    d->stall_cycles += s->stall_cycles;
    d->db_compute_cycles += s->db_compute_cycles;
    d->db_stall_cycles += s->db_stall_cycles;
    for (k = 0; k < ET_SYS_NSRAM; k++) {
        d->sram_read[k] += s->sram_read[k];
        d->sram_write[k] += s->sram_write[k];
        d->dram_read[k] += s->dram_read[k];
        d->dram_write[k] += s->dram_write[k];
    }
}

uint64_t et_sys_total_cycles(const et_sys_stats *s) { return s->compute_cycles + s->stall_cycles; }
uint64_t et_sys_db_total_cycles(const et_sys_stats *s) { return s->db_compute_cycles + s->db_stall_cycles; }

uint64_t et_sys_headline_cycles(const et_sys_config *c, const et_sys_stats *s)
{
    return c->double_buffer ? et_sys_db_total_cycles(s) : et_sys_total_cycles(s);
}

double et_sys_utilization(const et_sys_config *c, const et_sys_stats *s, uint64_t cycles)
{
    if (!cycles) return 0.0;
    return (double)s->macs / ((double)c->rows * (double)c->cols * (double)cycles);
}

double et_sys_mapping_efficiency(const et_sys_config *c, const et_sys_stats *s)
{
    if (!s->folds) return 0.0;
    return (double)s->pe_folds / ((double)s->folds * (double)c->rows * (double)c->cols);
}

void et_sys_energy_pj(const et_sys_config *c, const et_sys_stats *s, double out[4])
{
    uint64_t sram = 0, dram = 0;
    int k;
    for (k = 0; k < ET_SYS_NSRAM; k++) {
        sram += s->sram_read[k] + s->sram_write[k];
        dram += s->dram_read[k] + s->dram_write[k];
    }
    out[0] = (double)s->macs * c->energy.mac_pj;
    out[1] = (double)sram * c->energy.sram_pj_per_byte;
    out[2] = (double)dram * c->energy.dram_pj_per_byte;
    out[3] = out[0] + out[1] + out[2];
}
