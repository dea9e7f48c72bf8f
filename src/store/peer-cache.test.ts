import assert from 'node:assert/strict'
import { test } from 'node:test'
import { join } from 'node:path'
import { onCleanup, tempDir } from '../testing/temp.ts'
import { Datastore } from './datastore.ts'

const HOUR_MS = 3_600_000

test('the peer cache keeps the most recently seen peers, forgets old ones and survives a reopen', async (t) => {
  const path = join(await tempDir(t), 'datastore')
  let datastore = await Datastore.open(path)
  onCleanup(t, () => datastore.close())
  let cache = datastore.peerCache({ max: 3, ageMaxMs: 24 * HOUR_MS })
  const now = 100 * HOUR_MS
  for (let index = 0; index < 5; index++) {
    cache.seen({ peer: `p${index}`, addresses: [`/ip4/10.0.0.${index}/tcp/4001`], lastSeenMs: now - index * HOUR_MS, rttMs: 5 })
  }
  cache.seen({ peer: 'no-address', addresses: [], lastSeenMs: now, rttMs: 1 })
  await cache.save(now)
  assert.deepEqual((await cache.load(now)).map((entry) => entry.peer), ['p0', 'p1', 'p2'])

  await datastore.close()
  datastore = await Datastore.open(path)
  cache = datastore.peerCache({ max: 3, ageMaxMs: 24 * HOUR_MS })
  assert.deepEqual((await cache.load(now + 22.5 * HOUR_MS)).map((entry) => entry.peer), ['p0', 'p1'], 'p2 is now older than a day')
  assert.deepEqual((await cache.load(now + 22.5 * HOUR_MS)).map((entry) => entry.peer), ['p0', 'p1'])
})
