import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from './prng.ts'

test('the same seed gives the same stream, and another seed another stream', () => {
  const draw = (seed: bigint) => {
    const prng = Prng.fromSeed(seed)
    return Array.from({ length: 8 }, () => prng.nextUint32())
  }
  assert.deepEqual(draw(7n), draw(7n))
  assert.notDeepEqual(draw(7n), draw(8n))
})

test('forks are independent of each other and do not advance the parent', () => {
  const parent = Prng.fromSeed('commit-abc')
  const before = Prng.fromSeed('commit-abc').next()
  const a = parent.fork('peer-1').next()
  const b = parent.fork('peer-2').next()
  assert.notEqual(a, b)
  assert.equal(parent.next(), before)
  assert.equal(Prng.fromSeed('commit-abc').fork('peer-1').next(), a)
})

test('draws fall in range and are roughly uniform', () => {
  const prng = Prng.fromSeed(1n)
  const counts = new Array<number>(10).fill(0)
  const drawCount = 100_000
  for (let index = 0; index < drawCount; index++) {
    const value = prng.next()
    assert.ok(value >= 0 && value < 1)
    counts[Math.floor(value * 10)]!++
  }
  for (const count of counts) assert.ok(Math.abs(count - drawCount / 10) < drawCount / 100, `bucket count ${count}`)
  const meanExponential = Array.from({ length: 20_000 }, () => prng.exponential(5)).reduce((sum, x) => sum + x, 0) / 20_000
  assert.ok(Math.abs(meanExponential - 5) < 0.2, `exponential mean ${meanExponential}`)
})

test('sample takes distinct items', () => {
  const prng = Prng.fromSeed(3n)
  const items = Array.from({ length: 50 }, (_, index) => index)
  const taken = prng.sample(items, 20)
  assert.equal(new Set(taken).size, 20)
  assert.equal(prng.sample(items, 80).length, 50)
})

test('10,000 forks of one parent start 10,000 different streams', () => {
  const parent = Prng.fromSeed(1n)
  const firsts = new Set<string>()
  for (let index = 0; index < 10_000; index++) {
    const fork = parent.fork(`peer-${index}`)
    firsts.add(`${fork.nextUint32()}:${fork.nextUint32()}`)
  }
  assert.equal(firsts.size, 10_000)
})
