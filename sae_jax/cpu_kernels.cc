// CPU kernels for the TopK SAE step, called from XLA through jax.ffi (see cpu_kernels.py).
//
// XLA's CPU top_k is a single-threaded partial sort per row, and its gathers and scatters
// either materialise [batch, k, d] or run one slice at a time; these do the same arithmetic
// in one pass over rows, split over threads. Every kernel matches its XLA reference in
// sae_jax/topk.py (tests/test_sae_grads.py).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

// f(begin, end) on `threads` contiguous slices of [0, n); the caller's thread takes the first.
template <typename F>
static void parallel_for(int64_t n, int64_t threads, F f) {
  threads = std::max<int64_t>(1, std::min(threads, n));
  int64_t step = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int64_t b = step; b < n; b += step) pool.emplace_back(f, b, std::min(n, b + step));
  f(0, std::min(n, step));
  for (auto& t : pool) t.join();
}

// The k largest entries of each row, sorted descending; equal values keep the lower index
// first (as lax.top_k). A min-heap of the best k: most entries fail one comparison with its
// root, so a row costs little more than one read.
static ffi::Error TopKImpl(ffi::Buffer<ffi::F32> x, ffi::ResultBuffer<ffi::F32> vals,
                           ffi::ResultBuffer<ffi::S32> idx, int64_t threads) {
  const int64_t B = x.dimensions()[0], N = x.dimensions()[1], K = vals->dimensions()[1];
  if (K > N) return ffi::Error::InvalidArgument("top-k: k is larger than the row");
  const float* xp = x.typed_data();
  float* vp = vals->typed_data();
  int32_t* ip = idx->typed_data();
  parallel_for(B, threads, [&](int64_t b0, int64_t b1) {
    using Item = std::pair<float, int32_t>;
    // "a ranks before b"; as a heap comparator it keeps the worst kept item at the front
    auto before = [](const Item& a, const Item& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::vector<Item> heap(K);
    for (int64_t b = b0; b < b1; ++b) {
      const float* row = xp + b * N;
      for (int32_t i = 0; i < K; ++i) heap[i] = {row[i], i};
      std::make_heap(heap.begin(), heap.end(), before);
      for (int64_t i = K; i < N; ++i) {
        if (row[i] > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), before);
          heap.back() = {row[i], static_cast<int32_t>(i)};
          std::push_heap(heap.begin(), heap.end(), before);
        }
      }
      std::sort_heap(heap.begin(), heap.end(), before);
      for (int64_t j = 0; j < K; ++j) {
        vp[b * K + j] = heap[j].first;
        ip[b * K + j] = heap[j].second;
      }
    }
  });
  return ffi::Error::Success();
}

// out[b] = sum_j coef[b, j] * W[idx[b, j]]
static ffi::Error GatherSumImpl(ffi::Buffer<ffi::F32> coef, ffi::Buffer<ffi::S32> idx, ffi::Buffer<ffi::F32> W,
                                ffi::ResultBuffer<ffi::F32> out, int64_t threads) {
  const int64_t B = idx.dimensions()[0], K = idx.dimensions()[1], N = W.dimensions()[0], D = W.dimensions()[1];
  const float *cp = coef.typed_data(), *wp = W.typed_data();
  const int32_t* ip = idx.typed_data();
  float* op = out->typed_data();
  parallel_for(B, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* o = op + b * D;
      std::fill(o, o + D, 0.0f);
      for (int64_t j = 0; j < K; ++j) {
        const int32_t r = ip[b * K + j];
        const float c = cp[b * K + j];
        if (r < 0 || r >= N || c == 0.0f) continue;
        const float* w = wp + r * D;
        for (int64_t d = 0; d < D; ++d) o[d] += c * w[d];
      }
    }
  });
  return ffi::Error::Success();
}

// out[b, j] = g[b] . W[idx[b, j]]
static ffi::Error GatherDotImpl(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::S32> idx, ffi::Buffer<ffi::F32> W,
                                ffi::ResultBuffer<ffi::F32> out, int64_t threads) {
  const int64_t B = idx.dimensions()[0], K = idx.dimensions()[1], N = W.dimensions()[0], D = W.dimensions()[1];
  const float *gp = g.typed_data(), *wp = W.typed_data();
  const int32_t* ip = idx.typed_data();
  float* op = out->typed_data();
  parallel_for(B, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* gb = gp + b * D;
      for (int64_t j = 0; j < K; ++j) {
        const int32_t r = ip[b * K + j];
        float acc = 0.0f;
        if (r >= 0 && r < N) {
          const float* w = wp + r * D;
#pragma omp simd reduction(+ : acc)
          for (int64_t d = 0; d < D; ++d) acc += gb[d] * w[d];
        }
        op[b * K + j] = acc;
      }
    }
  });
  return ffi::Error::Success();
}

// out[n, d] = 0; out[idx[b, j]] += coef[b, j] * vecs[b]. Each thread owns a contiguous range
// of output rows and scans every (b, j), so no two threads write the same row.
static ffi::Error ScatterRowsImpl(ffi::Buffer<ffi::S32> idx, ffi::Buffer<ffi::F32> coef, ffi::Buffer<ffi::F32> vecs,
                                  ffi::ResultBuffer<ffi::F32> out, int64_t threads) {
  const int64_t B = idx.dimensions()[0], K = idx.dimensions()[1], D = vecs.dimensions()[1];
  const int64_t N = out->dimensions()[0];
  const int32_t* ip = idx.typed_data();
  const float *cp = coef.typed_data(), *vp = vecs.typed_data();
  float* op = out->typed_data();
  parallel_for(N, threads, [&](int64_t r0, int64_t r1) {
    std::memset(op + r0 * D, 0, sizeof(float) * (r1 - r0) * D);
    for (int64_t b = 0; b < B; ++b) {
      const float* v = vp + b * D;
      for (int64_t j = 0; j < K; ++j) {
        const int32_t r = ip[b * K + j];
        const float c = cp[b * K + j];
        if (r < r0 || r >= r1 || c == 0.0f) continue;
        float* o = op + r * D;
        for (int64_t d = 0; d < D; ++d) o[d] += c * v[d];
      }
    }
  });
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(MiTopK, TopKImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("threads"));

// (float [b, *], int [b, k], float W [n, d]) -> float result, for both gathers
static auto GatherBinding() {
  return ffi::Ffi::Bind()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::S32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Ret<ffi::Buffer<ffi::F32>>()
      .Attr<int64_t>("threads");
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(MiGatherSum, GatherSumImpl, GatherBinding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(MiGatherDot, GatherDotImpl, GatherBinding());

XLA_FFI_DEFINE_HANDLER_SYMBOL(MiScatterRows, ScatterRowsImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("threads"));
