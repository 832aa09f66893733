/** Key names: 1-200 visible ASCII characters (member ids such as `consensus:agent:summarize#1` fit). A module of its own: the offline verifier checks names without loading the key store. */
export const KEY_NAME_PATTERN = /^[\x21-\x7e]{1,200}$/;
