import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../core/prng.ts'
import { EventQueue } from './event-queue.ts'

test('events come out by time, and ties in the order they were scheduled', () => {
  const queue = new EventQueue()
  queue.push(5, 1, 0, -1, 0, 'late')
  queue.push(1, 1, 0, -1, 0, 'first-at-1')
  queue.push(1, 1, 0, -1, 0, 'second-at-1')
  queue.push(0, 1, 0, -1, 0, 'earliest')
  queue.push(1, 1, 0, -1, 0, 'third-at-1')
  const order: unknown[] = []
  for (let event = queue.pop(); event; event = queue.pop()) order.push(event.payload)
  assert.deepEqual(order, ['earliest', 'first-at-1', 'second-at-1', 'third-at-1', 'late'])
})

test('a random mix of pushes and pops matches a sorted reference', () => {
  const prng = Prng.fromSeed('event-queue')
  const queue = new EventQueue()
  const reference: { time: number; order: number }[] = []
  let order = 0
  const popped: number[] = []
  const expected: number[] = []
  for (let step = 0; step < 20_000; step++) {
    if (prng.next() < 0.6) {
      const time = prng.int(100)
      queue.push(time, 0, -1, -1, 0, order)
      reference.push({ time, order: order++ })
    } else if (reference.length > 0) {
      reference.sort((a, b) => a.time - b.time || a.order - b.order)
      expected.push(reference.shift()!.order)
      popped.push(queue.pop()!.payload as number)
    }
  }
  assert.deepEqual(popped, expected)
  assert.equal(queue.size, reference.length)
})

test('a time that is not finite is refused, and the queue is bounded', () => {
  const queue = new EventQueue(2)
  assert.throws(() => queue.push(Number.NaN, 0, 0, 0, 0, undefined))
  assert.throws(() => queue.push(Infinity, 0, 0, 0, 0, undefined))
  queue.push(1, 0, 0, 0, 0, undefined)
  queue.push(2, 0, 0, 0, 0, undefined)
  assert.throws(() => queue.push(3, 0, 0, 0, 0, undefined), /full/)
})
