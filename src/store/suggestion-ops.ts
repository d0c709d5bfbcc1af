/** Policy suggestions as stored (issue 18). Implementation follows. */
import { PdpError } from '../errors/pdp-error.js';
import type { DecideSuggestionInput, ListSuggestionsQuery, SuggestionRecord } from './store.js';
import type { StoreContext } from './store-context.js';

export async function saveSuggestions(_ctx: StoreContext, _list: readonly SuggestionRecord[]): Promise<void> {
  throw new PdpError('internal', 'saveSuggestions is not implemented yet');
}
export async function listSuggestions(_ctx: StoreContext, _query: ListSuggestionsQuery): Promise<SuggestionRecord[]> {
  throw new PdpError('internal', 'listSuggestions is not implemented yet');
}
export async function getSuggestion(_ctx: StoreContext, _id: string): Promise<SuggestionRecord | undefined> {
  throw new PdpError('internal', 'getSuggestion is not implemented yet');
}
export async function decideSuggestion(_ctx: StoreContext, _input: DecideSuggestionInput): Promise<SuggestionRecord> {
  throw new PdpError('internal', 'decideSuggestion is not implemented yet');
}
