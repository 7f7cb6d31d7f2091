// Selective scan with a complex diagonal A (lesson 3's eigenvalues), forward and backward: the plain form.
//
// One thread per channel (batch element, channel) holds all DSTATE complex states and walks time in order:
// no parallel scan, no shared memory, nothing but the recurrence. It has b·d threads only, so it is much
// slower than v2 on real A, and far faster than the torch reference's loop of small launches.
//
// Forward, per step t, with Δ = softplus(delta + delta_bias) (or delta + delta_bias) and a_k = A[d, k]:
//   h_k ← exp(Δ a_k) h_k + Δ B_k,t u_t                       (complex)
//   y_t = 2 Re(Σ_k C_k,t h_k) + D u_t,    out_t = y_t · silu(z_t)
// With FLAG_CHECKPOINT it saves h every CHK steps: h_chk[c] = the state after c·CHK steps (h_chk[0] = 0).
//
// Backward: for a real loss L the gradient of a complex w is ∂L/∂Re w + i ∂L/∂Im w (torch's convention).
// Walking time backwards with the adjoint λ_k = ∂L/∂h_k at step t (g_t = ∂L/∂y_t, m = exp(Δ a_k)):
//   λ ← λ + 2 g_t conj(C_k,t)                   (y_t reads h_k at step t)
//   dC_k,t += 2 g_t conj(h_k,t)
//   G = λ conj(h_k,t−1)                         (the gradient of m)
//   dA_k += Δ G conj(m),   dL/dΔ += Re(conj(G) a_k m)
//   dB_k,t += λ Δ u_t,     du_t += Δ Re(λ conj(B_k,t)),   dL/dΔ += u_t Re(λ conj(B_k,t))
//   λ ← conj(m) λ                               (on to step t − 1)
// Each segment of CHK steps is first replayed forward from its checkpoint into h_seg (this thread's rows).
//
// Layout: u, delta, z, out, dout, du, ddelta, dz: (b, d, l) float; A, dA: (d, n) complex; B, C, dB, dC:
// (b, g, n, l) complex with *_groups = g > 0, or fixed (d, n) with g = 0; D, delta_bias: (d,) float;
// last_state, dlast: (b, d, n) complex; h_chk: (b, d, ceil(l / CHK), n); h_seg: (b·d, CHK, n). complex =
// float2 (re, im): torch's complex64, or a float tensor of (re, im) pairs (B, C of last dimension 2l).
// Compiled without --use_fast_math: sincosf of Δ·Im(a) needs its full range reduction.

#ifndef DSTATE
#define DSTATE 16
#endif
#ifndef CHK
#define CHK 32  // steps between checkpoints (and the length of the replay buffer)
#endif

#define FLAG_D 1
#define FLAG_Z 2
#define FLAG_BIAS 4
#define FLAG_SOFTPLUS 8
#define FLAG_LAST_STATE 16  // forward: write last_state; backward: dlast is given
#define FLAG_CHECKPOINT 32

__device__ __forceinline__ float2 cmul(float2 p, float2 q) {
    return make_float2(p.x * q.x - p.y * q.y, p.x * q.y + p.y * q.x);
}

__device__ __forceinline__ float2 conj_times(float2 p, float2 q) {  // conj(p) · q
    return make_float2(p.x * q.x + p.y * q.y, p.x * q.y - p.y * q.x);
}

__device__ __forceinline__ float2 exp_scaled(float s, float2 a) {  // exp(s · a) for a real s
    float sn, cs;
    sincosf(s * a.y, &sn, &cs);
    const float e = expf(s * a.x);
    return make_float2(e * cs, e * sn);
}

__device__ __forceinline__ float step_size(float raw, int flags) {  // Δ from delta + delta_bias
    return (flags & FLAG_SOFTPLUS) ? (raw <= 20.f ? log1pf(expf(raw)) : raw) : raw;
}

// B or C of this channel: the start of its (n, l) block (variable) or of its row (fixed), then element (k, t)
__device__ __forceinline__ long long bc_base(int groups, int bi, int di, int dim, int seqlen) {
    return groups > 0 ? ((long long)bi * groups + di / (dim / groups)) * DSTATE * seqlen : (long long)di * DSTATE;
}

__device__ __forceinline__ long long bc_at(int groups, long long base, int k, int t, int seqlen) {
    return groups > 0 ? base + (long long)k * seqlen + t : base + k;
}

extern "C" __global__ void complex_scan_fwd(
    const float* __restrict__ u, const float* __restrict__ delta, const float2* __restrict__ A,
    const float2* __restrict__ B, const float2* __restrict__ C, const float* __restrict__ D,
    const float* __restrict__ z, const float* __restrict__ delta_bias,
    float* __restrict__ out, float2* __restrict__ last_state, float2* __restrict__ h_chk,
    int batch, int dim, int seqlen, int b_groups, int c_groups, int flags)
{
    const long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x;  // channel bi · dim + di
    if (ch >= (long long)batch * dim) return;
    const int bi = (int)(ch / dim), di = (int)(ch % dim);
    const long long row = ch * seqlen;
    const long long b0 = bc_base(b_groups, bi, di, dim, seqlen), c0 = bc_base(c_groups, bi, di, dim, seqlen);
    const float Dd = (flags & FLAG_D) ? D[di] : 0.f;
    const float bias = (flags & FLAG_BIAS) ? delta_bias[di] : 0.f;
    const int n_chk = (seqlen + CHK - 1) / CHK;

    float2 a[DSTATE], h[DSTATE];
    for (int k = 0; k < DSTATE; ++k) {
        a[k] = A[(long long)di * DSTATE + k];
        h[k] = make_float2(0.f, 0.f);
    }
    for (int t = 0; t < seqlen; ++t) {
        if ((flags & FLAG_CHECKPOINT) && t % CHK == 0)
            for (int k = 0; k < DSTATE; ++k) h_chk[(ch * n_chk + t / CHK) * DSTATE + k] = h[k];
        const float dt = step_size(delta[row + t] + bias, flags), x = dt * u[row + t];
        float y = 0.f;
        for (int k = 0; k < DSTATE; ++k) {
            const float2 b = B[bc_at(b_groups, b0, k, t, seqlen)], c = C[bc_at(c_groups, c0, k, t, seqlen)];
            h[k] = cmul(exp_scaled(dt, a[k]), h[k]);
            h[k].x += x * b.x;
            h[k].y += x * b.y;
            y += c.x * h[k].x - c.y * h[k].y;  // Re(C h)
        }
        float o = 2.f * y + Dd * u[row + t];
        if (flags & FLAG_Z) {
            const float zt = z[row + t];
            o *= zt / (1.f + expf(-zt));
        }
        out[row + t] = o;
    }
    if (flags & FLAG_LAST_STATE)
        for (int k = 0; k < DSTATE; ++k) last_state[ch * DSTATE + k] = h[k];
}

extern "C" __global__ void complex_scan_bwd(
    const float* __restrict__ u, const float* __restrict__ delta, const float2* __restrict__ A,
    const float2* __restrict__ B, const float2* __restrict__ C, const float* __restrict__ D,
    const float* __restrict__ z, const float* __restrict__ delta_bias, const float* __restrict__ dout,
    const float2* __restrict__ h_chk, float2* __restrict__ h_seg,
    float* __restrict__ du, float* __restrict__ ddelta, float2* __restrict__ dA, float2* __restrict__ dB,
    float2* __restrict__ dC, float* __restrict__ dD, float* __restrict__ dz, float* __restrict__ ddelta_bias,
    const float2* __restrict__ dlast, int batch, int dim, int seqlen, int b_groups, int c_groups, int flags)
{
    const long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= (long long)batch * dim) return;
    const int bi = (int)(ch / dim), di = (int)(ch % dim);
    const long long row = ch * seqlen;
    const long long b0 = bc_base(b_groups, bi, di, dim, seqlen), c0 = bc_base(c_groups, bi, di, dim, seqlen);
    const float Dd = (flags & FLAG_D) ? D[di] : 0.f;
    const float bias = (flags & FLAG_BIAS) ? delta_bias[di] : 0.f;
    const int n_chk = (seqlen + CHK - 1) / CHK;
    float2* hs = h_seg + ch * CHK * DSTATE;  // hs[j · DSTATE + k]: state k after step t0 + j of the segment

    float2 a[DSTATE], lam[DSTATE], da[DSTATE], dB_fixed[DSTATE], dC_fixed[DSTATE];
    for (int k = 0; k < DSTATE; ++k) {
        a[k] = A[(long long)di * DSTATE + k];
        lam[k] = (flags & FLAG_LAST_STATE) ? dlast[ch * DSTATE + k] : make_float2(0.f, 0.f);
        da[k] = dB_fixed[k] = dC_fixed[k] = make_float2(0.f, 0.f);
    }
    float dD_sum = 0.f, dbias_sum = 0.f;

    for (int seg = n_chk - 1; seg >= 0; --seg) {
        const int t0 = seg * CHK, t1 = min(seqlen, t0 + CHK);
        const float2* h_start = h_chk + (ch * n_chk + seg) * DSTATE;  // the state before step t0
        for (int k = 0; k < DSTATE; ++k) {  // replay the segment forward
            float2 h = h_start[k];
            for (int t = t0; t < t1; ++t) {
                const float dt = step_size(delta[row + t] + bias, flags), x = dt * u[row + t];
                const float2 b = B[bc_at(b_groups, b0, k, t, seqlen)];
                h = cmul(exp_scaled(dt, a[k]), h);
                h.x += x * b.x;
                h.y += x * b.y;
                hs[(t - t0) * DSTATE + k] = h;
            }
        }
        for (int t = t1 - 1; t >= t0; --t) {  // then walk it backwards
            const float raw = delta[row + t] + bias, dt = step_size(raw, flags), ut = u[row + t];
            const float2* h_now = hs + (t - t0) * DSTATE;
            const float2* h_prev = t > t0 ? h_now - DSTATE : h_start;
            float y = 0.f;
            for (int k = 0; k < DSTATE; ++k) {
                const float2 c = C[bc_at(c_groups, c0, k, t, seqlen)];
                y += c.x * h_now[k].x - c.y * h_now[k].y;
            }
            y = 2.f * y + Dd * ut;
            float g = dout[row + t];  // ∂L/∂y_t
            if (flags & FLAG_Z) {
                const float zt = z[row + t], sig = 1.f / (1.f + expf(-zt));
                dz[row + t] = g * y * sig * (1.f + zt * (1.f - sig));  // silu'(z) = σ(z)(1 + z(1 − σ(z)))
                g *= zt * sig;
            }
            dD_sum += g * ut;
            float du_t = g * Dd, dstep = 0.f;  // dstep: ∂L/∂Δ_t
            for (int k = 0; k < DSTATE; ++k) {
                const long long ib = bc_at(b_groups, b0, k, t, seqlen), ic = bc_at(c_groups, c0, k, t, seqlen);
                const float2 b = B[ib], c = C[ic], m = exp_scaled(dt, a[k]);
                lam[k].x += 2.f * g * c.x;
                lam[k].y -= 2.f * g * c.y;
                const float2 gc = make_float2(2.f * g * h_now[k].x, -2.f * g * h_now[k].y);  // 2 g conj(h_t)
                const float2 G = conj_times(h_prev[k], lam[k]);  // λ conj(h_{t−1})
                const float2 Gm = conj_times(m, G);              // G conj(m)
                da[k].x += dt * Gm.x;
                da[k].y += dt * Gm.y;
                const float2 am = cmul(a[k], m);
                dstep += G.x * am.x + G.y * am.y;  // Re(conj(G) a m)
                const float s = lam[k].x * b.x + lam[k].y * b.y;  // Re(λ conj(B))
                du_t += dt * s;
                dstep += ut * s;
                const float2 gb = make_float2(lam[k].x * dt * ut, lam[k].y * dt * ut);  // λ Δ u
                if (b_groups > 0) {
                    atomicAdd(&dB[ib].x, gb.x);
                    atomicAdd(&dB[ib].y, gb.y);
                } else {
                    dB_fixed[k].x += gb.x;
                    dB_fixed[k].y += gb.y;
                }
                if (c_groups > 0) {
                    atomicAdd(&dC[ic].x, gc.x);
                    atomicAdd(&dC[ic].y, gc.y);
                } else {
                    dC_fixed[k].x += gc.x;
                    dC_fixed[k].y += gc.y;
                }
                lam[k] = conj_times(m, lam[k]);  // on to step t − 1
            }
            du[row + t] = du_t;
            if (flags & FLAG_SOFTPLUS) dstep *= raw <= 20.f ? 1.f / (1.f + expf(-raw)) : 1.f;
            ddelta[row + t] = dstep;
            dbias_sum += dstep;
        }
    }
    for (int k = 0; k < DSTATE; ++k) {
        const long long i = (long long)di * DSTATE + k;
        atomicAdd(&dA[i].x, da[k].x);
        atomicAdd(&dA[i].y, da[k].y);
        if (b_groups == 0) {
            atomicAdd(&dB[i].x, dB_fixed[k].x);
            atomicAdd(&dB[i].y, dB_fixed[k].y);
        }
        if (c_groups == 0) {
            atomicAdd(&dC[i].x, dC_fixed[k].x);
            atomicAdd(&dC[i].y, dC_fixed[k].y);
        }
    }
    if (flags & FLAG_D) atomicAdd(dD + di, dD_sum);
    if (flags & FLAG_BIAS) atomicAdd(ddelta_bias + di, dbias_sum);
}
