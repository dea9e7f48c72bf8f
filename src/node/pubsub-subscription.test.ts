import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isShoalError, ShoalError } from '../core/errors.ts'
import type { PubSubMessage } from './api.ts'
import { SubscriptionQueue } from './pubsub-subscription.ts'

function message(index: number, bytes = 1): PubSubMessage {
  return { topic: 't', data: new Uint8Array(bytes).fill(index), from: undefined, messageId: String(index), receivedFrom: 'self' }
}

function queue(limits = { messagesMax: 3, bytesMax: 100 }) {
  const ended = { count: 0 }
  const counters = { messagesQueued: 0, messagesDropped: 0 }
  const subscription = new SubscriptionQueue('t', limits, counters, () => ended.count++)
  return { subscription, ended, counters }
}

test('a reader that falls behind gets the newest messages and a count of the rest', async () => {
  const { subscription, counters } = queue()
  for (let index = 0; index < 10; index++) subscription.push(message(index))
  assert.equal(subscription.droppedCount, 7)
  assert.deepEqual(counters, { messagesQueued: 10, messagesDropped: 7 })
  const iterator = subscription[Symbol.asyncIterator]()
  assert.deepEqual((await Promise.all([iterator.next(), iterator.next(), iterator.next()])).map((result) => result.value?.messageId), ['7', '8', '9'])
  const waiting = iterator.next()
  subscription.push(message(10))
  assert.equal((await waiting).value?.messageId, '10', 'a waiting reader gets the message at once')
})

test('the byte bound drops old messages but always keeps the newest', () => {
  const { subscription } = queue({ messagesMax: 100, bytesMax: 10 })
  subscription.push(message(0, 4))
  subscription.push(message(1, 4))
  subscription.push(message(2, 4))
  assert.equal(subscription.droppedCount, 1)
  subscription.push(message(3, 50))
  assert.equal(subscription.droppedCount, 3)
})

test('close, the signal and return() end it once; what was buffered is dropped', async () => {
  const { subscription, ended } = queue()
  const controller = new AbortController()
  subscription.endWith(controller.signal)
  subscription.push(message(1))
  const iterator = subscription[Symbol.asyncIterator]()
  assert.equal((await iterator.next()).value?.messageId, '1')
  const waiting = iterator.next()
  controller.abort()
  assert.deepEqual(await waiting, { done: true, value: undefined })
  subscription.push(message(2))
  subscription.close()
  await iterator.return!()
  assert.deepEqual(await iterator.next(), { done: true, value: undefined })
  assert.equal(ended.count, 1)
  const early = queue()
  early.subscription.endWith(AbortSignal.abort())
  assert.equal(early.ended.count, 1, 'an aborted signal ends it at once')
})

test('fail hands out what is buffered, then the error, then the end', async () => {
  const { subscription, ended } = queue()
  subscription.push(message(1))
  subscription.fail(new ShoalError('OFFLINE', 'pub/sub has stopped'))
  const iterator = subscription[Symbol.asyncIterator]()
  assert.equal((await iterator.next()).value?.messageId, '1')
  await assert.rejects(iterator.next(), (error) => isShoalError(error, 'OFFLINE'))
  assert.deepEqual(await iterator.next(), { done: true, value: undefined })
  assert.equal(ended.count, 1)
  const waiting = queue()
  const next = waiting.subscription[Symbol.asyncIterator]().next()
  waiting.subscription.fail(new ShoalError('OFFLINE', 'pub/sub has stopped'))
  await assert.rejects(next, (error) => isShoalError(error, 'OFFLINE'), 'a waiting reader gets the error')
})
