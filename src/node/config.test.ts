import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isShoalError } from '../core/errors.ts'
import { tempDir } from '../testing/temp.ts'
import { defaultConfig, getConfigValue, parseConfig, readConfig, setConfigValue, writeConfig } from './config.ts'

const configError = (message: string) => (error: unknown) => isShoalError(error, 'INVALID_CONFIG') && error.message === message

test('the default config has the API on 127.0.0.1:5080, no quota, the unixfs-v1-2025 profile and the network on ports 4001-4002', () => {
  const config = defaultConfig()
  assert.deepEqual({ api: config.api, storage: config.storage, import: config.import, memory: config.memory }, { api: { address: '127.0.0.1:5080', requestsInFlightMax: 256, readsInFlightMax: 32 }, storage: { quotaBytes: null }, import: { cidProfile: 'unixfs-v1-2025' }, memory: { heapTrimRssRiseBytes: 16 * 2 ** 20, mallocTrim: true } })
  assert.deepEqual(config.network.listen, ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'])
  assert.deepEqual(config.network.bootstrap, [])
  assert.equal(config.network.mdns, true)
  assert.deepEqual(parseConfig({ storage: {} }, 'x'), defaultConfig(), 'missing keys take their defaults')
})

test('an unknown key or a bad value is a one-line error naming the key', () => {
  assert.throws(() => parseConfig({ storage: { quota: 1 } }, 'config.json'), configError("config.json: unknown key 'storage.quota'"))
  assert.throws(() => parseConfig({ colour: 'blue' }, 'config.json'), configError("config.json: unknown key 'colour'"))
  assert.throws(() => parseConfig({ import: { cidProfile: 'v2' } }, 'config.json'), (error) => isShoalError(error, 'INVALID_CONFIG') && error.message.startsWith("config.json: invalid value for 'import.cidProfile'"))
  assert.throws(() => parseConfig({ api: { address: 'localhost' } }, 'config.json'), (error) => isShoalError(error, 'INVALID_CONFIG') && error.message.includes("'api.address'") && !error.message.includes('\n'))
})

test('lists are set as JSON and their items checked', () => {
  const config = setConfigValue(defaultConfig(), 'network.listen', '["/ip4/127.0.0.1/tcp/0"]')
  assert.deepEqual(config.network.listen, ['/ip4/127.0.0.1/tcp/0'])
  assert.throws(() => setConfigValue(defaultConfig(), 'network.listen', '["not an address"]'), (error) => isShoalError(error, 'INVALID_CONFIG') && error.message.includes("'network.listen.0'"))
})

test('sizes are given as bytes or with units', () => {
  const config = defaultConfig()
  assert.equal(setConfigValue(config, 'storage.quotaBytes', '1048576').storage.quotaBytes, 1048576)
  assert.equal(setConfigValue(config, 'storage.quotaBytes', '10GiB').storage.quotaBytes, 10 * 2 ** 30)
  assert.equal(setConfigValue(config, 'storage.quotaBytes', '500 MB').storage.quotaBytes, 500e6)
  assert.equal(setConfigValue(config, 'storage.quotaBytes', 'null').storage.quotaBytes, null)
  assert.equal(setConfigValue(config, 'memory.heapTrimRssRiseBytes', '64MiB').memory.heapTrimRssRiseBytes, 64 * 2 ** 20)
  assert.equal(setConfigValue(config, 'memory.heapTrimRssRiseBytes', 'null').memory.heapTrimRssRiseBytes, null)
  assert.equal(setConfigValue(config, 'memory.mallocTrim', 'false').memory.mallocTrim, false)
  assert.throws(() => setConfigValue(config, 'storage.quotaBytes', '12 parsecs'), (error) => isShoalError(error, 'INVALID_CONFIG') && error.message.includes("'storage.quotaBytes'"))
  assert.throws(() => setConfigValue(config, 'storage.quotaBytes', '-5'), (error) => isShoalError(error, 'INVALID_CONFIG'))
})

test('get and set take dotted keys; sections and unknown keys are refused', () => {
  const config = setConfigValue(defaultConfig(), 'import.cidProfile', 'unixfs-v0-2015')
  assert.equal(getConfigValue(config, 'import.cidProfile'), 'unixfs-v0-2015')
  assert.deepEqual(getConfigValue(config, 'api'), { address: '127.0.0.1:5080', requestsInFlightMax: 256, readsInFlightMax: 32 })
  assert.throws(() => getConfigValue(config, 'api.port'), configError("unknown config key 'api.port'"))
  assert.throws(() => setConfigValue(config, 'nothing.here', '1'), configError("unknown config key 'nothing.here'"))
  assert.throws(() => setConfigValue(config, 'api', '{}'), configError("config key 'api' is a section; set one of its keys"))
})

test('config.json round-trips, and a damaged file is a one-line error', async (t) => {
  const repo = await tempDir(t)
  const config = setConfigValue(defaultConfig(), 'storage.quotaBytes', '1GiB')
  await writeConfig(repo, config)
  assert.deepEqual(await readConfig(repo), config)
  await writeFile(join(repo, 'config.json'), '{ "api": ')
  await assert.rejects(readConfig(repo), (error) => isShoalError(error, 'INVALID_CONFIG') && error.message.startsWith(`${join(repo, 'config.json')}: not valid JSON`))
})
