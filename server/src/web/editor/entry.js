// The CodeMirror 6 pieces the authoring page uses, bundled once into
// assets/vendor/codemirror.js as `window.StepCodeMirror`. The page's own
// logic (diagnostics, completion, the graph) lives in assets/author.js,
// which needs no build: only a new CodeMirror piece means rebuilding this.
import { EditorState, EditorSelection, Compartment } from "@codemirror/state";
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  drawSelection,
  highlightSpecialChars,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  foldGutter,
  foldKeymap,
  indentOnInput,
  bracketMatching,
  syntaxHighlighting,
  defaultHighlightStyle,
  HighlightStyle,
  syntaxTree,
} from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { linter, lintGutter, setDiagnostics, forceLinting } from "@codemirror/lint";
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, startCompletion } from "@codemirror/autocomplete";
import { json } from "@codemirror/lang-json";

// The editor's usual setup, without search, multiple cursors or
// rectangular selection (the page does not need them).
const setup = [
  lineNumbers(),
  highlightActiveLineGutter(),
  highlightSpecialChars(),
  history(),
  foldGutter(),
  drawSelection(),
  indentOnInput(),
  syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
  bracketMatching(),
  closeBrackets(),
  highlightActiveLine(),
  keymap.of([indentWithTab, ...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...foldKeymap, ...completionKeymap]),
];

window.StepCodeMirror = {
  EditorState,
  EditorSelection,
  Compartment,
  EditorView,
  // For the page's dark theme (author.js defines its colours).
  HighlightStyle,
  syntaxHighlighting,
  tags,
  setup,
  json,
  syntaxTree,
  linter,
  lintGutter,
  setDiagnostics,
  forceLinting,
  autocompletion,
  startCompletion,
};
