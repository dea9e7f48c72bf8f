import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { isShoalError } from '../core/errors.ts'
import { tempDir } from '../testing/temp.ts'
import { defaultRepoPath, initRepo, Repo } from './repo.ts'

test('init creates the key (0600), config, block and data stores; the PeerId is an Ed25519 libp2p id', async (t) => {
  const path = join(await tempDir(t), 'repo')
  const { peerId } = await initRepo(path)
  assert.match(peerId.toString(), /^12D3KooW/)
  assert.equal(peerIdFromString(peerId.toString()).type, 'Ed25519')
  assert.deepEqual((await readdir(path)).sort(), ['blocks', 'config.json', 'datastore', 'keys'])
  assert.equal((await stat(join(path, 'keys', 'self.key'))).mode & 0o777, 0o600)
  const repo = await Repo.open(path)
  assert.equal(repo.identity.peerId.toString(), peerId.toString(), 'the identity is loaded back')
  await repo.close()
})

test('init refuses an existing repository and a non-empty folder; it leaves no staging folder', async (t) => {
  const parent = await tempDir(t)
  const path = join(parent, 'repo')
  await initRepo(path)
  await assert.rejects(initRepo(path), (error) => isShoalError(error, 'REPO_EXISTS'))
  await writeFile(join(parent, 'file'), 'x')
  await assert.rejects(initRepo(parent), (error) => isShoalError(error, 'REPO_EXISTS') && /not empty/.test(error.message))
  assert.deepEqual((await readdir(parent)).sort(), ['file', 'repo'])
})

test('open reports a missing repository, a locked one, and a key readable by others', async (t) => {
  const path = join(await tempDir(t), 'repo')
  await assert.rejects(Repo.open(path), (error) => isShoalError(error, 'REPO_MISSING') && error.message.includes('shoal init'))
  await initRepo(path)
  const repo = await Repo.open(path)
  await assert.rejects(Repo.open(path), (error) => isShoalError(error, 'REPO_LOCKED') && error.message.includes(`PID ${process.pid}`))
  await repo.close()
  await chmod(join(path, 'keys', 'self.key'), 0o644)
  await assert.rejects(Repo.open(path), (error) => isShoalError(error, 'INVALID_CONFIG') && /chmod 600/.test(error.message))
  await chmod(join(path, 'keys', 'self.key'), 0o600)
  await (await Repo.open(path)).close()
})

test('the default repository is $SHOAL_REPO, else ~/.shoal', () => {
  assert.equal(defaultRepoPath({ SHOAL_REPO: '/srv/shoal' }), '/srv/shoal')
  assert.equal(defaultRepoPath({ HOME: '/home/ann' }).endsWith('.shoal'), true)
})
