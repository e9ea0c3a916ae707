// Reads one stream with huggingface.js, writing each token's text to stdout
// as genls generate does, and prints the number of tokens on stderr.
//
//   node hfjs.mjs text-generation BASE_URL N   textGenerationStream
//   node hfjs.mjs chat BASE_URL N              chatCompletionStream
//
// Given an endpoint URL, textGenerationStream (4.x) posts to BASE_URL/completions
// and reads the OpenAI completions stream; chatCompletionStream posts to
// BASE_URL/chat/completions.
import { textGenerationStream, chatCompletionStream } from "@huggingface/inference";

const [mode, url, n] = process.argv.slice(2);
let tokens = 0;
if (mode === "text-generation") {
  for await (const out of textGenerationStream({ endpointUrl: url, inputs: "def fibonacci(n):", parameters: { max_new_tokens: Number(n) } })) {
    const text = out.choices?.[0]?.text;
    if (text) {
      tokens++;
      process.stdout.write(text);
    }
  }
} else {
  for await (const chunk of chatCompletionStream({ endpointUrl: url, model: "m", messages: [{ role: "user", content: "def fibonacci(n):" }], max_tokens: Number(n) })) {
    const text = chunk.choices[0]?.delta?.content;
    if (text) {
      tokens++;
      process.stdout.write(text);
    }
  }
}
process.stderr.write(`${tokens}\n`);
