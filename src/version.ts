/** Kept equal to package.json's version by version.test.ts. */
export const SHOAL_VERSION = '0.1.0'
export const SHOAL_AGENT_VERSION = `shoal/${SHOAL_VERSION}`
