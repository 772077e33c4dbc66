// The MessagePack codec: round trips of every type Herald's frames use, the sizes the
// format chooses, and refusals of what it cannot read.

import assert from "node:assert/strict";
import { test } from "node:test";

import { decode, encode } from "../src/msgpack.js";

test("values round-trip", () => {
  const values = [
    null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER,
    0.5, -1.25, 1e300, "", "é✓", "x".repeat(31), "x".repeat(32), "x".repeat(300), "x".repeat(70000),
    [], [1, [2, [3]]], Array.from({ length: 20 }, (_, i) => i), {}, { a: 1, b: { c: [null, "d"] } },
    new Uint8Array([1, 2, 3]), 2n ** 63n, -(2n ** 63n),
  ];
  for (const v of values) assert.deepEqual(decode(encode(v)), v, String(v).slice(0, 40));
  const map = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
  assert.deepEqual(decode(encode(map)), map);
});

test("the shortest form is chosen", () => {
  assert.deepEqual([...encode(5)], [0x05]);
  assert.deepEqual([...encode(-5)], [0xfb]);
  assert.deepEqual([...encode(200)], [0xcc, 200]);
  assert.deepEqual([...encode("ab")], [0xa2, 0x61, 0x62]);
  assert.deepEqual([...encode([true])], [0x91, 0xc3]);
  assert.deepEqual([...encode({ id: 1 })], [0x81, 0xa2, 0x69, 0x64, 0x01]);
  // A frame of Herald's, as the server writes it.
  const push = Uint8Array.from([0x81, 0xa4, ...Buffer.from("push"), 0x82, 0xa7, ...Buffer.from("channel"), 0xa1, 0x61, 0xa6, ...Buffer.from("offset"), 0xcd, 0x01, 0x00]);
  assert.deepEqual(decode(push), { push: { channel: "a", offset: 256 } });
});

test("what cannot be read is refused", () => {
  assert.throws(() => decode(Uint8Array.from([0xa3, 0x61])), RangeError);
  assert.throws(() => decode(Uint8Array.from([0xc1])), RangeError);
  assert.throws(() => decode(Uint8Array.from([0x01, 0x02])), RangeError);
  assert.throws(() => encode(() => 1), TypeError);
});
