//! The LBR-SPR autoencoder (docs/method.md 5.1): a U-Net-shaped encoder-decoder
//! without skip connections, F = `features_root`.
//!
//! BatchNorm is our own small layer rather than burn's: burn keeps the
//! *biased* batch variance in its running statistics, PyTorch (the reference
//! code) the unbiased one (n / (n - 1)), which changes eval-mode errors for
//! small batches and at the 4x4 bottleneck.

use crate::init::{pytorch_uniform, Rng};
use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Tensor};

const BN_EPSILON: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// BatchNorm2d as PyTorch defines it (eps 1e-5, momentum 0.1, affine,
/// running variance from the unbiased batch variance).
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
    running_mean: RunningState<Tensor<1>>,
    running_var: RunningState<Tensor<1>>,
}

impl BatchNorm2d {
    fn new(channels: usize, device: &Device) -> Self {
        BatchNorm2d {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
        }
    }

    /// Batch statistics (and a running-statistics update) on an autodiff
    /// device, running statistics otherwise.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if !x.device().is_autodiff() {
            return batch_norm(
                x,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value_sync(),
                self.running_var.value_sync(),
                BN_EPSILON,
            );
        }
        let [b, _, h, w] = x.dims();
        let out = batch_norm_train(x, self.gamma.val(), self.beta.val(), BN_EPSILON);
        self.update_running(out.mean.detach(), out.variance.detach(), b * h * w);
        out.output
    }

    /// Moves the running statistics towards a batch's mean and biased
    /// variance over `count` values (stored unbiased, as PyTorch does).
    pub fn update_running(&self, mean: Tensor<1>, biased_var: Tensor<1>, count: usize) {
        let n = count as f64;
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let mean = self.running_mean.value_sync().mul_scalar(1.0 - BN_MOMENTUM) + mean.mul_scalar(BN_MOMENTUM);
        let var = self.running_var.value_sync().mul_scalar(1.0 - BN_MOMENTUM) + biased_var.mul_scalar(BN_MOMENTUM * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
    }

    /// The running mean and variance, the last update included. (burn's
    /// `RunningState::value` returns the value as of the last sync, which
    /// lags one training step behind until a save syncs it: eval errors then
    /// changed across a save, and the z-score statistics did not match the
    /// errors they normalized.)
    pub fn running(&self) -> (Tensor<1>, Tensor<1>) {
        (self.running_mean.value_sync(), self.running_var.value_sync())
    }
}

/// A parameter in the order the CPU kernels take them (kernels::layers).
pub enum ParamRef<'a> {
    Rank1(&'a Param<Tensor<1>>),
    Rank4(&'a Param<Tensor<4>>),
}

impl ParamRef<'_> {
    fn push_conv<'a>(out: &mut Vec<ParamRef<'a>>, weight: &'a Param<Tensor<4>>, bias: &'a Option<Param<Tensor<1>>>) {
        out.push(ParamRef::Rank4(weight));
        out.push(ParamRef::Rank1(bias.as_ref().expect("every convolution here has a bias")));
    }
}

/// Conv3x3, BN, ReLU, Conv3x3, BN, ReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
}

impl DoubleConv {
    fn new(a: usize, b: usize, rng: &mut Rng, device: &Device) -> Self {
        DoubleConv {
            conv1: conv(a, b, 3, rng, device),
            bn1: BatchNorm2d::new(b, device),
            conv2: conv(b, b, 3, rng, device),
            bn2: BatchNorm2d::new(b, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(x)));
        relu(self.bn2.forward(self.conv2.forward(x)))
    }

    fn params<'a>(&'a self, out: &mut Vec<ParamRef<'a>>) {
        for (conv, bn) in [(&self.conv1, &self.bn1), (&self.conv2, &self.bn2)] {
            ParamRef::push_conv(out, &conv.weight, &conv.bias);
            out.push(ParamRef::Rank1(&bn.gamma));
            out.push(ParamRef::Rank1(&bn.beta));
        }
    }
}

/// The autoencoder: 3 poolings down to S/8, 3 transposed convolutions back.
#[derive(Module, Debug)]
pub struct Autoencoder {
    enc1: DoubleConv,
    enc2: DoubleConv,
    enc3: DoubleConv,
    enc4: DoubleConv,
    pool: MaxPool2d,
    up1: ConvTranspose2d,
    dec1: DoubleConv,
    up2: ConvTranspose2d,
    dec2: DoubleConv,
    up3: ConvTranspose2d,
    dec3: DoubleConv,
    head: Conv2d,
}

impl Autoencoder {
    /// A freshly initialized network (PyTorch's default initialization,
    /// drawn from `seed`, so a seed gives the same weights on any device).
    pub fn new(in_channels: usize, out_channels: usize, features: usize, seed: u64, device: &Device) -> Self {
        let f = features;
        let rng = &mut Rng::new(seed);
        Autoencoder {
            enc1: DoubleConv::new(in_channels, f, rng, device),
            enc2: DoubleConv::new(f, 2 * f, rng, device),
            enc3: DoubleConv::new(2 * f, 4 * f, rng, device),
            enc4: DoubleConv::new(4 * f, 8 * f, rng, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            up1: up(8 * f, rng, device),
            dec1: DoubleConv::new(8 * f, 4 * f, rng, device),
            up2: up(4 * f, rng, device),
            dec2: DoubleConv::new(4 * f, 2 * f, rng, device),
            up3: up(2 * f, rng, device),
            dec3: DoubleConv::new(2 * f, f, rng, device),
            head: conv(f, out_channels, 1, rng, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.enc1.forward(x);
        let x = self.enc2.forward(self.pool.forward(x));
        let x = self.enc3.forward(self.pool.forward(x));
        let x = self.enc4.forward(self.pool.forward(x));
        let x = self.dec1.forward(self.up1.forward(x));
        let x = self.dec2.forward(self.up2.forward(x));
        let x = self.dec3.forward(self.up3.forward(x));
        self.head.forward(x)
    }

    /// The parameters in the order of `kernels::layers`.
    pub fn params(&self) -> Vec<ParamRef<'_>> {
        let mut out = Vec::new();
        for block in [&self.enc1, &self.enc2, &self.enc3, &self.enc4] {
            block.params(&mut out);
        }
        for (up, block) in [(&self.up1, &self.dec1), (&self.up2, &self.dec2), (&self.up3, &self.dec3)] {
            ParamRef::push_conv(&mut out, &up.weight, &up.bias);
            block.params(&mut out);
        }
        ParamRef::push_conv(&mut out, &self.head.weight, &self.head.bias);
        out
    }

    /// The BatchNorm layers in forward order.
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        [&self.enc1, &self.enc2, &self.enc3, &self.enc4, &self.dec1, &self.dec2, &self.dec3]
            .into_iter()
            .flat_map(|b| [&b.bn1, &b.bn2])
            .collect()
    }
}

/// A k x k convolution, padding k/2, with bias.
fn conv(a: usize, b: usize, k: usize, rng: &mut Rng, device: &Device) -> Conv2d {
    let pad = k / 2;
    let mut c = Conv2dConfig::new([a, b], [k, k]).with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad)).init(device);
    // PyTorch: fan_in = in_channels * k * k for weight and bias.
    let fan_in = a * k * k;
    c.weight = Param::from_tensor(pytorch_uniform(rng, [b, a, k, k], fan_in, device));
    c.bias = Some(Param::from_tensor(pytorch_uniform(rng, [b], fan_in, device)));
    c
}

/// ConvTranspose2d(c -> c, k3, s2, p1, output_padding 1): doubles H and W.
fn up(c: usize, rng: &mut Rng, device: &Device) -> ConvTranspose2d {
    let mut t = ConvTranspose2dConfig::new([c, c], [3, 3]).with_stride([2, 2]).with_padding([1, 1]).with_padding_out([1, 1]).init(device);
    // PyTorch computes fan_in from weight dim 1 (out_channels) for transposed convs.
    let fan_in = c * 9;
    t.weight = Param::from_tensor(pytorch_uniform(rng, [c, c, 3, 3], fan_in, device));
    t.bias = Some(Param::from_tensor(pytorch_uniform(rng, [c], fan_in, device)));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn running_variance_is_the_unbiased_batch_variance_like_pytorch() {
        let device = Device::flex().autodiff();
        let bn = BatchNorm2d::new(1, &device);
        // One channel holding 0..8: mean 3.5, biased variance 42/8 = 5.25, unbiased 42/7 = 6.
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 1, 2, 2]), &device);
        let out = bn.forward(x);
        // Training output is normalized with the biased variance (as in PyTorch).
        let first = out.into_data().try_into_vec::<f32>().expect("f32 output")[0];
        assert!((first - (-3.5 / (5.25f32 + 1e-5).sqrt())).abs() < 1e-5, "{first}");
        let eval = bn.valid();
        let mean: f32 = eval.running_mean.value().into_scalar();
        let var: f32 = eval.running_var.value().into_scalar();
        assert!((mean - 0.35).abs() < 1e-6, "running mean 0.9 * 0 + 0.1 * 3.5, got {mean}");
        assert!((var - 1.5).abs() < 1e-6, "running var 0.9 * 1 + 0.1 * 6 (unbiased), got {var}");
    }
}
