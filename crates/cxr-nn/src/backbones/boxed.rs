//! A module kept on the heap, as one of `Backbone`'s variants. Inception V3's layers take 54 KB
//! as values: unboxed, every classifier moved or cloned in training carried that on the stack.

use std::ops::{Deref, DerefMut};

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

/// `M` behind a pointer, the same module to burn: its tensors keep `M`'s own names.
#[derive(Debug, Clone)]
pub struct Boxed<M>(Box<M>);

impl<M> Boxed<M> {
    pub fn new(module: M) -> Self {
        Self(Box::new(module))
    }

    pub fn into_inner(self) -> M {
        *self.0
    }

    /// `f` applied to the module inside, boxed again.
    pub fn map_inner(self, f: impl FnOnce(M) -> M) -> Self {
        Self::new(f(self.into_inner()))
    }
}

impl<M> Deref for Boxed<M> {
    type Target = M;

    fn deref(&self) -> &M {
        &self.0
    }
}

impl<M> DerefMut for Boxed<M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.0
    }
}

impl<M: Module> Module for Boxed<M> {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.0.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        self.map_inner(|module| module.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.map_inner(|module| module.to_device(device))
    }

    fn train(self) -> Self {
        self.map_inner(Module::train)
    }

    fn valid(&self) -> Self {
        Self::new(self.0.valid())
    }

    fn materialize(self) -> Self {
        self.map_inner(Module::materialize)
    }

    fn visit<Visitor: ModuleVisitor>(&self, visitor: &mut Visitor) {
        self.0.visit(visitor)
    }

    fn map<Mapper: ModuleMapper>(self, mapper: &mut Mapper) -> Self {
        self.map_inner(|module| module.map(mapper))
    }
}

impl<M: ModuleDisplay> ModuleDisplayDefault for Boxed<M> {
    fn content(&self, content: Content) -> Option<Content> {
        self.0.content(content)
    }

    fn num_params(&self) -> usize {
        ModuleDisplayDefault::num_params(&*self.0)
    }
}

impl<M: ModuleDisplay> ModuleDisplay for Boxed<M> {}

#[cfg(test)]
mod tests {
    use burn::store::ModuleSnapshot;
    use burn::store::burn_pack::Tensor as StoredTensor;

    use super::super::{Backbone, BackboneKind};
    use crate::device::inference_device;

    #[test]
    fn a_boxed_backbone_keeps_its_tensor_names_and_a_classifier_stays_small() {
        let net = BackboneKind::InceptionV3.init(&inference_device());
        let Backbone::InceptionV3(boxed) = &net else {
            panic!("not inception-v3")
        };
        let names =
            |tensors: Vec<StoredTensor>| tensors.into_iter().map(|t| t.name).collect::<Vec<_>>();
        let inner = names((**boxed).collect(None, None, true));
        assert!(!inner.is_empty());
        assert_eq!(inner, names(net.collect(None, None, true)));
        // The largest unboxed variant sets the size of every classifier value.
        assert!(size_of::<Backbone>() < 4096, "{}", size_of::<Backbone>());
    }
}
