// A small multilayer perceptron in Eigen with a hand-written backward pass, Adam, and hooks that let a
// training step run on fake-quantized weights (QAT): the forward uses the hook's weights, the gradient
// with respect to them goes back through the hook's straight-through backward to the float weights.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

namespace digits {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;

struct Layer {
  Mat weight;  // [out, in]: output channel first, as quantization per channel (axis 0) expects
  Vec bias;    // [out]
};

struct Net {
  std::vector<Layer> layers;
  std::int64_t weight_count() const {
    std::int64_t n = 0;
    for (const auto& l : layers) n += l.weight.size();
    return n;
  }
};

// Deterministic across standard libraries: raw mt19937_64 output, no std:: distributions.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)); }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 gen_;
};

// He-uniform initialisation for ReLU layers.
inline Net make_net(const std::vector<int>& sizes, Rng& rng) {
  Net net;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    Layer l;
    l.weight.resize(sizes[i + 1], sizes[i]);
    const double limit = std::sqrt(6.0 / sizes[i]);
    for (Eigen::Index k = 0; k < l.weight.size(); ++k)
      l.weight.data()[k] = static_cast<float>((2 * rng.uniform() - 1) * limit);
    l.bias = Vec::Zero(sizes[i + 1]);
    net.layers.push_back(std::move(l));
  }
  return net;
}

// Logits of a batch X [batch, in] with the given weights (one matrix per layer) and the net's biases;
// ReLU between layers. acts, when given, receives every layer's input (for backward).
inline Mat forward(const Net& net, const std::vector<const Mat*>& weights, const Mat& x,
                   std::vector<Mat>* acts = nullptr) {
  Mat a = x;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    if (acts) acts->push_back(a);
    Mat z = a * weights[l]->transpose();
    z.rowwise() += net.layers[l].bias.transpose();
    if (l + 1 < net.layers.size()) z = z.cwiseMax(0.0f);
    a = std::move(z);
  }
  return a;
}

inline std::vector<const Mat*> float_weights(const Net& net) {
  std::vector<const Mat*> w;
  for (const auto& l : net.layers) w.push_back(&l.weight);
  return w;
}

inline Mat softmax(const Mat& logits, float temperature = 1.0f) {
  Mat p = logits / temperature;
  for (Eigen::Index r = 0; r < p.rows(); ++r) {
    const float m = p.row(r).maxCoeff();
    p.row(r) = (p.row(r).array() - m).exp();
    p.row(r) /= p.row(r).sum();
  }
  return p;
}

// Mean cross-entropy of logits against labels.
inline double cross_entropy(const Mat& logits, std::span<const int> labels) {
  const Mat p = softmax(logits);
  double loss = 0;
  for (Eigen::Index r = 0; r < p.rows(); ++r) loss -= std::log(std::max(1e-12f, p(r, labels[r])));
  return loss / static_cast<double>(p.rows());
}

// Mean KL(p || q) over the rows of two probability matrices.
inline double kl_divergence(const Mat& p, const Mat& q) {
  double kl = 0;
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    const double a = p.data()[i];
    if (a > 0) kl += a * (std::log(a) - std::log(std::max(1e-30, static_cast<double>(q.data()[i]))));
  }
  return p.rows() ? kl / static_cast<double>(p.rows()) : 0;
}

inline double accuracy(const Mat& logits, std::span<const int> labels) {
  std::int64_t right = 0;
  for (Eigen::Index r = 0; r < logits.rows(); ++r) {
    Eigen::Index best;
    logits.row(r).maxCoeff(&best);
    right += best == labels[r];
  }
  return logits.rows() ? static_cast<double>(right) / static_cast<double>(logits.rows()) : 0;
}

// d(sum of cross-entropies)/dlogits = softmax - onehot (divide by the batch for the mean).
inline Mat cross_entropy_grad(const Mat& logits, std::span<const int> labels) {
  Mat dz = softmax(logits);
  for (Eigen::Index r = 0; r < dz.rows(); ++r) dz(r, labels[static_cast<std::size_t>(r)]) -= 1.0f;
  return dz;
}

// Cosine learning-rate decay: lr at progress 0, 0 at progress 1.
inline float cosine_lr(float lr, double progress) {
  return static_cast<float>(lr * 0.5 * (1 + std::cos(3.14159265358979 * progress)));
}

// Minibatch training loop: every epoch reshuffles the rows, then fn(x_batch, y_batch, progress) runs on
// consecutive batches of that order; progress runs from 0 (first batch) towards 1 over all epochs.
template <class F>
void for_each_minibatch(const Mat& x, const std::vector<int>& y, int epochs, Eigen::Index batch, Rng& rng,
                        F&& fn) {
  const Eigen::Index n = x.rows();
  std::vector<std::size_t> order(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const std::int64_t total = epochs * ((n + batch - 1) / batch);
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    rng.shuffle(order);
    for (Eigen::Index start = 0; start < n; start += batch) {
      const Eigen::Index b = std::min(batch, n - start);
      Mat xb(b, x.cols());
      std::vector<int> yb(static_cast<std::size_t>(b));
      for (Eigen::Index i = 0; i < b; ++i) {
        const auto src = static_cast<Eigen::Index>(order[static_cast<std::size_t>(start + i)]);
        xb.row(i) = x.row(src);
        yb[static_cast<std::size_t>(i)] = y[static_cast<std::size_t>(src)];
      }
      fn(xb, yb, static_cast<double>(step++) / static_cast<double>(total));
    }
  }
}

// Gradients of the loss with respect to the weights used in the forward and the biases, given dlogits.
struct Grads {
  std::vector<Mat> weight;
  std::vector<Vec> bias;
};

inline Grads backward(const Net& net, const std::vector<const Mat*>& weights, const std::vector<Mat>& acts,
                      Mat dz) {
  Grads g;
  const std::size_t n = net.layers.size();
  g.weight.resize(n);
  g.bias.resize(n);
  for (std::size_t l = n; l-- > 0;) {
    g.weight[l] = dz.transpose() * acts[l];
    g.bias[l] = dz.colwise().sum().transpose();
    if (l == 0) break;
    Mat da = dz * (*weights[l]);
    // ReLU: acts[l] is the previous layer's output after ReLU; zero where it was clipped.
    dz = (acts[l].array() > 0.0f).select(da, 0.0f);
  }
  return g;
}

class Adam {
 public:
  Adam(const Net& net, float lr) : lr_(lr) {
    for (const auto& l : net.layers) {
      mw_.push_back(Mat::Zero(l.weight.rows(), l.weight.cols()));
      vw_.push_back(Mat::Zero(l.weight.rows(), l.weight.cols()));
      mb_.push_back(Vec::Zero(l.bias.size()));
      vb_.push_back(Vec::Zero(l.bias.size()));
    }
  }
  void step(Net& net, const Grads& g) {
    ++t_;
    const float c1 = 1.0f - std::pow(kBeta1, static_cast<float>(t_));
    const float c2 = 1.0f - std::pow(kBeta2, static_cast<float>(t_));
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      update(net.layers[l].weight, g.weight[l], mw_[l], vw_[l], c1, c2);
      update(net.layers[l].bias, g.bias[l], mb_[l], vb_[l], c1, c2);
    }
  }
  void set_lr(float lr) { lr_ = lr; }

 private:
  static constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f;
  template <class M>
  void update(M& p, const M& g, M& m, M& v, float c1, float c2) {
    m = kBeta1 * m + (1 - kBeta1) * g;
    v = kBeta2 * v + (1 - kBeta2) * g.cwiseProduct(g);
    p.array() -= lr_ * (m.array() / c1) / ((v.array() / c2).sqrt() + kEps);
  }
  float lr_;
  std::int64_t t_ = 0;
  std::vector<Mat> mw_, vw_;
  std::vector<Vec> mb_, vb_;
};

}  // namespace digits
