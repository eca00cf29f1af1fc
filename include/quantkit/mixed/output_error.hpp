// Activation-aware error of a quantized layer: how much its outputs move on given inputs.
//
// A layer of shape [out, ...] is the matrix W [out, in], in = prod(shape[1:]); its inputs are X [rows, in]
// (a linear layer's input activations; for a convolution, its im2col patches). Quantizing W to Wq moves
// the outputs X W^T by X dW^T, dW = W - Wq, and
//     ||X dW^T||^2 = sum_r dW_r^T (X^T X) dW_r = trace(dW G dW^T),   G = X^T X  [in, in],
// so G is computed once per layer and every candidate's error then costs out * in^2 / 2 multiply-adds
// (G is symmetric), whatever the number of rows. G is kept in double: its entries sum `rows` products.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qk {

// G = X^T X of `inputs` viewed as [rows, features] (row-major), as a row-major [features, features] matrix.
std::vector<double> input_gram(std::span<const float> inputs, std::int64_t features);

// sum over the rows r of W [out, in] of (W_r - A_r)^T G (W_r - A_r): ||X (W - A)^T||^2. A may equal W's
// zero matrix, which gives ||X W^T||^2, the output energy. in = sqrt(G's size); W's size is out * in.
double output_error(std::span<const float> weights, std::span<const float> approx,
                    std::span<const double> gram);
double output_energy(std::span<const float> weights, std::span<const double> gram);

}  // namespace qk
