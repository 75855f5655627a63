"""Reference flow-matching schedule, UniPC (bh2, order 2) and Euler (docs/wan-spec.md §4).

Numerics mirror Wan's FlowUniPCMultistepScheduler (wan/utils/fm_solvers_unipc.py,
a port of diffusers' UniPCMultistepScheduler v0.31) as used by wan/text2video.py:

  scheduler = FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1,
                                          use_dynamic_shifting=False)
  scheduler.set_timesteps(steps, shift=shift)

* __init__: sigmas = 1 - linspace(1, 1/1000, 1000)[::-1] in float64, cast to float32;
  sigma_max = float(float32 value) = 0.9990000128746033, sigma_min = 0.0.
* set_timesteps: numpy float64 throughout: linspace(sigma_max, 0, S+1)[:-1], shift
  s·σ/(1+(s-1)·σ), timesteps = σ'·1000 cast to int64 (truncation); the solver's sigma
  table is concatenate([σ', [0]]).astype(float32).
* step(): every scalar (σ, α=1-σ, λ=log α - log σ, h, expm1, the B(h)/ρ
  coefficients) is a 0-d float32 torch tensor; tensors are float32; the order of
  the arithmetic below follows the reference line by line.
"""
import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000


def base_sigma_max():
    alphas = np.linspace(1, 1 / NUM_TRAIN_TIMESTEPS, NUM_TRAIN_TIMESTEPS)[::-1].copy()
    sigmas = torch.from_numpy(1.0 - alphas).to(dtype=torch.float32)
    # shift=1 in the constructor: 1·σ/(1 + 0·σ) leaves the float32 values unchanged
    return sigmas[0].item(), sigmas[-1].item()


def schedule(steps, shift):
    """-> (timesteps int64 [S], sigmas float32 [S+1], sigmas_f64 float64 [S+1]).

    sigmas_f64 are the unrounded float64 shifted sigmas (plus the final 0); the
    solver uses the float32 ones."""
    sigma_max, sigma_min = base_sigma_max()
    sig = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
    sig = shift * sig / (1 + (shift - 1) * sig)
    timesteps = torch.from_numpy(sig * NUM_TRAIN_TIMESTEPS).to(dtype=torch.int64)
    sig_f64 = np.concatenate([sig, [0.0]])
    sig_f32 = torch.from_numpy(sig_f64.astype(np.float32))
    return timesteps, sig_f32, torch.from_numpy(sig_f64)


def cfg_combine(v_cond, v_uncond, guide):
    """v = v_u + g·(v_c − v_u)  (float32)."""
    return v_uncond + guide * (v_cond - v_uncond)


def _lam(sigma):
    """λ = log(α) − log(σ) with α = 1 − σ, on 0-d float32 tensors."""
    alpha = 1 - sigma
    return torch.log(alpha) - torch.log(sigma)


class UniPC:
    """FlowUniPCMultistepScheduler with solver_order=2, predict_x0, bh2,
    lower_order_final, corrector on every step after the first, final sigma 0."""

    order = 2

    def __init__(self, steps, shift):
        self.timesteps, self.sigmas, _ = schedule(steps, shift)
        self.num_steps = steps
        self.model_outputs = [None, None]  # x0 predictions, newest last
        self.lower_order_nums = 0
        self.last_sample = None
        self.this_order = None
        self.step_index = 0

    def _coeffs(self, hh, order):
        """B_h, h_phi_1, and the b vector of the reference (float32 0-d tensors)."""
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial_i = 1
        B_h = torch.expm1(hh)  # bh2
        b = []
        for i in range(1, order + 1):
            b.append(h_phi_k * factorial_i / B_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        return B_h, h_phi_1, b

    def _predictor(self, sample, order):
        m = self.model_outputs
        m0 = m[-1]
        i = self.step_index
        sigma_t, sigma_s0 = self.sigmas[i + 1], self.sigmas[i]
        alpha_t = 1 - sigma_t
        lambda_t = _lam(sigma_t)
        lambda_s0 = _lam(sigma_s0)
        h = lambda_t - lambda_s0
        D1 = None
        if order == 2:
            lambda_s1 = _lam(self.sigmas[i - 1])
            rk = (lambda_s1 - lambda_s0) / h
            D1 = (m[-2] - m0) / rk
        hh = -h
        B_h, h_phi_1, _ = self._coeffs(hh, order)
        x_t_ = sigma_t / sigma_s0 * sample - alpha_t * h_phi_1 * m0
        if D1 is not None:
            rhos_p = torch.tensor([0.5], dtype=sample.dtype)  # order 2: fixed 0.5
            pred_res = rhos_p[0] * D1
            return x_t_ - alpha_t * B_h * pred_res
        return x_t_ - alpha_t * B_h * 0

    def _corrector(self, model_t, last_sample, order):
        m = self.model_outputs
        m0 = m[-1]
        i = self.step_index
        sigma_t, sigma_s0 = self.sigmas[i], self.sigmas[i - 1]
        alpha_t = 1 - sigma_t
        lambda_t = _lam(sigma_t)
        lambda_s0 = _lam(sigma_s0)
        h = lambda_t - lambda_s0
        rks = []
        D1 = None
        if order == 2:
            lambda_s1 = _lam(self.sigmas[i - 2])
            rk = (lambda_s1 - lambda_s0) / h
            rks.append(rk)
            D1 = (m[-2] - m0) / rk
        rks.append(torch.tensor(1.0))
        hh = -h
        B_h, h_phi_1, b = self._coeffs(hh, order)
        if order == 1:
            rhos_c = torch.tensor([0.5], dtype=last_sample.dtype)
        else:
            rks_t = torch.stack([r.to(torch.float32) for r in rks])
            R = torch.stack([torch.pow(rks_t, k) for k in range(order)])  # [[1,1],[rk,1]]
            rhos_c = torch.linalg.solve(R, torch.stack(b).to(torch.float32))
        x_t_ = sigma_t / sigma_s0 * last_sample - alpha_t * h_phi_1 * m0
        corr_res = rhos_c[0] * D1 if D1 is not None else 0
        D1_t = model_t - m0
        return x_t_ - alpha_t * B_h * (corr_res + rhos_c[-1] * D1_t)

    def step(self, v, sample):
        """One scheduler step: v = (guided) model output at `sample`, returns x_{i+1}.

        Also returns (after the call) self.last_x0 = the x0 prediction m_i and
        self.corrected = the sample after the corrector (the predictor's start)."""
        i = self.step_index
        sigma = self.sigmas[i]
        x0 = sample - sigma * v  # convert_model_output
        if i > 0 and self.last_sample is not None:
            sample = self._corrector(x0, self.last_sample, self.this_order)
        self.model_outputs = [self.model_outputs[1], x0]
        this_order = min(self.order, self.num_steps - i)  # lower_order_final
        self.this_order = min(this_order, self.lower_order_nums + 1)
        self.last_sample = sample
        prev = self._predictor(sample, self.this_order)
        if self.lower_order_nums < self.order:
            self.lower_order_nums += 1
        self.step_index += 1
        self.last_x0 = x0
        self.corrected = sample
        return prev


class Euler:
    """x_{i+1} = x_i + (σ_{i+1} − σ_i)·v_i on the same float32 sigma table."""

    def __init__(self, steps, shift):
        self.timesteps, self.sigmas, _ = schedule(steps, shift)
        self.step_index = 0

    def step(self, v, sample):
        i = self.step_index
        dt = self.sigmas[i + 1] - self.sigmas[i]
        self.step_index += 1
        return sample + dt * v


def make_sampler(name, steps, shift):
    return {"unipc": UniPC, "euler": Euler}[name](steps, shift)


def sample(model_fn, noise, steps, shift, guide, sampler="unipc", record=None):
    """Full CFG sampling loop.

    model_fn(x, t, which) -> velocity, which in ('cond', 'uncond'); t is the int64
    timestep as a python int (the reference feeds integer timesteps).
    record: optional dict receiving per-step tensors."""
    s = make_sampler(sampler, steps, shift)
    x = noise.clone()
    xs, vs, x0s = [x], [], []
    for i in range(steps):
        t = int(s.timesteps[i].item())
        v_c = model_fn(x, t, "cond")
        v_u = model_fn(x, t, "uncond")
        v = cfg_combine(v_c, v_u, guide)
        x = s.step(v, x)
        xs.append(x)
        vs.append(v)
        if sampler == "unipc":
            x0s.append(s.last_x0)
    if record is not None:
        record["latents_per_step"] = torch.stack(xs)
        record["velocity_per_step"] = torch.stack(vs)
        if x0s:
            record["x0_per_step"] = torch.stack(x0s)
        record["timesteps"] = s.timesteps
        record["sigmas"] = s.sigmas
    return x
