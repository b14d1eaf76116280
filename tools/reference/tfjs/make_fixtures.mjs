// Writes crates/cxr-nn/tests/fixtures/tfjs/nsfwjs_inception_v3.safetensors: nsfwjs' TF.js
// Inception V3 (loaded by nsfwjs itself, uint8-dequantised by TF.js) run on two paediatric X-rays.
//
// Usage: node make_fixtures.mjs OUT_FILE IMAGE.jpeg...
// Stores each image's 299x299 8-bit pixels (one plane: X-rays are gray), the mixed10 features
// average-pooled to 2048 values, and the 5-class softmax, all for the input x/127.5-1 (the
// Keras Inception V3 normalisation, which cxr uses; nsfwjs itself feeds x/255).

import fs from "node:fs";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import jpeg from "jpeg-js";
import * as nsfwjs from "nsfwjs";

const SIZE = 299;

function grayPixels(file) {
  const { width, height, data } = jpeg.decode(fs.readFileSync(file), { useTArray: true });
  const rgb = tf.tensor3d(data, [height, width, 4], "int32").slice([0, 0, 0], [-1, -1, 3]);
  const resized = tf.image.resizeBilinear(rgb.toFloat(), [SIZE, SIZE]).round().clipByValue(0, 255);
  const gray = resized.slice([0, 0, 0], [-1, -1, 1]).reshape([SIZE, SIZE]);
  return gray.cast("int32");
}

// Minimal safetensors writer: 8-byte little-endian header length, JSON header, raw data.
function writeSafetensors(file, tensors, metadata) {
  const header = { __metadata__: metadata };
  const buffers = [];
  let offset = 0;
  for (const [name, { dtype, shape, bytes }] of Object.entries(tensors)) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    buffers.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(json), ...buffers]));
}

const f32 = (t) => ({ dtype: "F32", shape: t.shape, bytes: Buffer.from(t.dataSync().buffer) });

async function main() {
  const [outFile, ...images] = process.argv.slice(2);
  await tf.setBackend("cpu");
  const wrapper = await nsfwjs.load("InceptionV3", { size: SIZE });
  const model = wrapper.model;
  const probe = tf.model({
    inputs: model.inputs,
    outputs: [model.getLayer("flatten_1").output, model.outputs[0]],
  });

  const pixels = tf.stack(images.map(grayPixels));
  const rgb = tf.stack([pixels, pixels, pixels], -1).toFloat();
  const [pooled, probabilities] = probe.predict(rgb.div(127.5).sub(1));

  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  writeSafetensors(
    outFile,
    {
      pixels: { dtype: "U8", shape: pixels.shape, bytes: Buffer.from(Uint8Array.from(pixels.dataSync())) },
      pooled: f32(pooled),
      probabilities: f32(probabilities),
    },
    { images: images.map((f) => path.basename(f)).join(","), tfjs: tf.version.tfjs },
  );
  console.log(`wrote ${outFile}: probabilities[0] = ${Array.from(probabilities.dataSync().slice(0, 5))}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
