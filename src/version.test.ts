import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { SHOAL_VERSION } from './version.ts'

test("SHOAL_VERSION is package.json's version", async () => {
  const packageJson = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  assert.equal(SHOAL_VERSION, packageJson.version)
})
