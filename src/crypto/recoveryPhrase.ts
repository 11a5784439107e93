import { entropyToMnemonic, mnemonicToEntropy, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { randomBytes } from './random.js';

/**
 * The recovery phrase is BIP-39 English encoding of 256 bits of entropy: 24 words with a
 * checksum, so a mistyped word is caught before anything is derived from it.
 */
export const RECOVERY_PHRASE_WORDS = 24;
export const MASTER_SECRET_BYTES = 32;

export function newMasterSecret(): Buffer {
  return randomBytes(MASTER_SECRET_BYTES);
}

export function masterSecretToPhrase(secret: Uint8Array): string {
  return entropyToMnemonic(secret, wordlist);
}

/** Returns the master secret, or null if the phrase is not 24 valid words with a correct checksum. */
export function phraseToMasterSecret(phrase: string): Buffer | null {
  const normalized = phrase.trim().toLowerCase().split(/\s+/).join(' ');
  if (normalized.split(' ').length !== RECOVERY_PHRASE_WORDS) return null;
  if (!validateMnemonic(normalized, wordlist)) return null;
  return Buffer.from(mnemonicToEntropy(normalized, wordlist));
}

/** The 2,048-word list, reused for generated passphrases (11 bits per word). */
export const PASSPHRASE_WORDLIST: readonly string[] = wordlist;
