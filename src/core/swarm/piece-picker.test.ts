import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { Bitfield } from './bitfield.ts'
import { PiecePicker } from './piece-picker.ts'

/** A brute-force model of the picker: the candidates and their availability. */
class Model {
  readonly availability: number[]
  readonly candidates = new Set<number>()
  constructor(leafCount: number, held: Bitfield) {
    this.availability = new Array<number>(leafCount).fill(0)
    for (let leaf = 0; leaf < leafCount; leaf++) if (!held.has(leaf)) this.candidates.add(leaf)
  }
  rarestAmong(peer: Bitfield): number {
    let rarest = Infinity
    for (const leaf of this.candidates) if (peer.has(leaf)) rarest = Math.min(rarest, this.availability[leaf]!)
    return rarest
  }
}

test('rarest-first always picks a candidate of least availability among the peer\'s leaves, through any sequence of changes', () => {
  for (let run = 0; run < 20; run++) {
    const prng = Prng.fromSeed(`picker-${run}`)
    const leafCount = 1 + prng.int(300)
    const held = new Bitfield(leafCount)
    for (let leaf = 0; leaf < leafCount; leaf++) if (prng.bernoulli(0.2)) held.add(leaf)
    const picker = new PiecePicker(leafCount, held, prng.fork('picker'))
    const model = new Model(leafCount, held)
    // As in a session, where the peer asked is itself counted: every leaf is held by someone.
    picker.addPeer(Bitfield.full(leafCount))
    model.availability.fill(1)
    for (let step = 0; step < 2_000; step++) {
      const leaf = prng.int(leafCount)
      const operation = prng.int(4)
      if (operation === 0) {
        picker.increment(leaf)
        model.availability[leaf]!++
      } else if (operation === 1 && model.availability[leaf]! > 1) {
        picker.decrement(leaf)
        model.availability[leaf]!--
      } else if (operation === 2) {
        picker.remove(leaf)
        model.candidates.delete(leaf)
      } else if (operation === 3 && !held.has(leaf)) {
        picker.restore(leaf)
        model.candidates.add(leaf)
      }
      assert.equal(picker.candidateCount, model.candidates.size)
      assert.equal(picker.isCandidate(leaf), model.candidates.has(leaf))
      // A dense peer walks the buckets; a sparse one is searched leaf by leaf: both must agree with the model.
      const dense = new Bitfield(leafCount)
      const sparse = new Bitfield(leafCount)
      for (let other = 0; other < leafCount; other++) {
        if (prng.bernoulli(0.9)) dense.add(other)
        if (prng.bernoulli(0.03)) sparse.add(other)
      }
      for (const peer of [dense, sparse]) {
        const picked = picker.pick(peer, 'rarest')
        const rarest = model.rarestAmong(peer)
        if (rarest === Infinity) {
          assert.equal(picked, -1)
        } else {
          assert.ok(model.candidates.has(picked) && peer.has(picked))
          assert.equal(model.availability[picked], rarest, `run ${run} step ${step}: picked availability ${model.availability[picked]}, rarest ${rarest}`)
        }
      }
    }
  }
})

test('random-first picks every candidate of the peer, in-order picks the lowest', () => {
  const prng = Prng.fromSeed('random-first')
  const none = new Bitfield(64)
  const picker = new PiecePicker(64, none, prng)
  const peer = Bitfield.full(64)
  picker.addPeer(peer)
  const seen = new Set<number>()
  for (let draw = 0; draw < 2_000; draw++) seen.add(picker.pick(peer, 'random'))
  assert.equal(seen.size, 64)
  picker.remove(0)
  picker.remove(1)
  assert.equal(picker.pick(peer, 'in-order'), 2)
  picker.restore(0)
  assert.equal(picker.pick(peer, 'in-order'), 0)
})

test('a bitfield keeps the wire layout and counts what it holds', () => {
  const bits = new Bitfield(10)
  assert.ok(bits.add(0))
  assert.ok(bits.add(9))
  assert.ok(!bits.add(9))
  assert.deepEqual([...bits.bytes], [0x80, 0x40])
  assert.equal(bits.count, 2)
  const collected: number[] = []
  bits.forEach((leaf) => collected.push(leaf))
  assert.deepEqual(collected, [0, 9])
  assert.equal(Bitfield.full(10).countExcept(bits), 8)
  assert.ok(Bitfield.sparesClear(10, new Uint8Array([0xff, 0xc0])))
  assert.ok(!Bitfield.sparesClear(10, new Uint8Array([0xff, 0xe0])))
  assert.throws(() => new Bitfield(10, new Uint8Array(1)), /takes 2 bytes/)
})
