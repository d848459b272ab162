"""A tiny BERT cross-encoder written to disk on the fly: no model hub is needed (tests, offline quick start).

The directory has the shape of a Hugging Face model repository (config.json, weights, vocab.txt, tokenizer files),
so eland's TransformerModel(model_id=<directory>, task_type="text_similarity") traces it as it would
cross-encoder/ms-marco-MiniLM-L-6-v2. Weights are random but fixed by the seed: scores are meaningless but
deterministic, which is all a test needs to prove the sandbox really runs the uploaded model, and all the
offline quick start needs to show the whole stack working (its rankings are not meaningful).

    build_tiny_cross_encoder(tmp_path / "tiny")                  # ~100 KB, traces in about a second
    build_tiny_cross_encoder(tmp_path / "big", **MINILM_SIZE)    # ~90 MB, like ms-marco-MiniLM-L-6-v2
"""

from __future__ import annotations

import os
from pathlib import Path

# The dimensions of cross-encoder/ms-marco-MiniLM-L-6-v2 (its config.json), for benchmarks that want a realistic size.
MINILM_SIZE = {"hidden_size": 384, "num_layers": 6, "num_heads": 12, "intermediate_size": 1536, "vocab_size": 30522}

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Words of the semantic-reranking tutorial (queries, titles, directors and plots of its small-movies data set, as in
# manifests/data/movies.json) and common English, so the tutorial's texts tokenize to real word pieces, not [UNK].
_WORDS = """
a about after against all alone along also an and another any are around as at away back bad be because become
becomes been before begins being best between both boy but by can city come comes could country crime criminal
day dead death decides did do does down during each early earth end enemy even ever every evil face family father
find finds first flesh eating eats for former found friend friends from get gets girl go goes good group guy guys
had has have he help her hero him himself his home how human in into is it its journey just kill killer kills
killing know last later life like live lives long love make man many meet meets men mission money more most mother
move movie much murder murders must my mysterious named never new night no not now of off old on one only or other
our out over own past people plan plot police power prison rescue return revenge save school secret see serial
she should since small so son soon story than that the their them then there these they this through time to
together town true try turns two under until up us use very victims war was way we were what when where which while
who whom why will with woman women world would year years young your
agent agents alien aliens ancient army assassin band bank batman boss boxer brother brothers captain cannibal cell
child children clerk con cop cops corrupt crew dark dinosaur dinosaurs doctor dream dreams drug empire escape fbi
fight fighter fighting fiction flight forrest gang gangster gangsters godfather gump hannibal heist hitman hunt
insomniac island jedi jail job john jules knight lambs lecter lives luke mafia man matrix mob murderer neo office
officer park pilot pulp reality robbery robot scientist shark ship silence simulation skywalker soldier space star
starling submarine terminator thief thieves trainee underground vincent vigilante wars wife wing wizard
clarice help helps imprisoned psychiatrist catch catches manipulative brilliant skinning female sadistic
moon sun phases position relative lake largest taiwan nantou county solar eclipse happens directly seen
science geography astronomy technology hide often does meaning according hitchikers guide 42
aboard across action adventure aging alabama alive allers always american anarchist angeles animals animation
answers anyone apart aristocrat arranges arrives artist attacks attorney banker bar bathhouse battle befriends
behind believing biography biologist birthday bloody boxing break brings brooklyn bryan built cameron captured car
casablanca case caused challenge chance chaos charismatic chief childhood christopher circle cloned closes club coen
comedy commercial commit coppola corridors cowboy creature criminals cross cub curtiz customs cyborg cynical
dangerous darabont david days debt decades demme desert destroy detective devours disciplined distress district doll
drama droids drowning drugs either enclosures ended energy engaged episode expected fails fall falling fantasy far
fargo farm federal feels fellow fi field figure fincher fisherman five flashy flees follows football ford forgetting
fortune francis frank free full future george german goodfellas gotham gradually great grinning grizzled grows
hacker hands harbor harvest hayao head heat heir history hitmen hold holocaust homeland hope horror humanity humans
husband iceberg idea if inception industrialist inmate inside instead invited iq iv james jaws jewish joel joins
jonathan judgment jurassic keeps kidnapping kind king knows lana lasseter lead leader learns left legendary
lieutenant lilly liner lineup lion list los lost low lucas luxurious machine machines maiden mann marine marriage
martin masked massacre mess met michael mind minkoff minnesota miyazaki morocco mystery needs nightclub nobody nolan
obsessive occupied ocean offered once opportunistic order owner paranoia parents passage paths patiently penniless
pigs planet planned plans plant poland pregnant preview princess principled professional protects prove pull pushed
quentin quiet ranger ranks rebellious rebels redemption refuses reluctant remote replaced reprogrammed resistance
resort ridley rises rivals rob robert roger romance run ruthless safe salesman scheming schindler sci scientists
scorsese scott sea secrets seized sent sentenced set sets shape shawshank shield shifting signal singer skins
sleepless smuggler snowy soap something specialist spends spielberg spirited spirits sports stalks start station
stealing steven still strikes string stumbles sulky summer sure survive survivor suspects swears sweetheart swimmers
takes talkative tarantino team teams tear teenager tells ten theme thirty thousand three thriller throne throw
titanic told torn toy trust tug turned uncle unravels usual vietnam violent voyage wachowski walks walls wanders
wanted wartime wealthy weekend white whose win witch worker workers working york youngest zemeckis
"""

# Word pieces so unseen words split into known sub-words as BERT's WordPiece does.
_PIECES = ["##s", "##ed", "##ing", "##er", "##ly", "##es", "##a", "##e", "##i", "##o", "##n", "##t", "##r", "##y"]
_CHARACTERS = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,;:!?'\"-()[]/&")


def tiny_vocabulary(vocab_size: int | None = None) -> list[str]:
    """The vocabulary, in id order: special tokens, characters, words, word pieces, then [unusedN] padding."""
    words = sorted(set(_WORDS.split()))
    vocab = SPECIAL_TOKENS + _CHARACTERS + [w for w in words if w not in _CHARACTERS] + _PIECES
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    seen: set[str] = set()
    vocab = [t for t in vocab if not (t in seen or seen.add(t))]
    if vocab_size is not None:
        if vocab_size < len(vocab):
            raise ValueError(f"vocab_size must be at least {len(vocab)}")
        vocab += [f"[unused{i}]" for i in range(vocab_size - len(vocab))]
    return vocab


def build_tiny_cross_encoder(directory: str | os.PathLike, *, hidden_size: int = 32, num_layers: int = 2,
                             num_heads: int = 2, intermediate_size: int = 37, vocab_size: int | None = None,
                             max_position_embeddings: int = 512, seed: int = 0) -> Path:
    """Write a BertForSequenceClassification cross-encoder (num_labels=1) to `directory` and return its path.

    max_position_embeddings stays 512 by default: eland reads the tokenizer's model_max_length (set to the same
    value) for max_sequence_length and traces with inputs padded to it.
    """
    import torch  # lazy: torch is heavy and only model-building tests need it
    import transformers

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocabulary(vocab_size)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        num_labels=1,  # a cross-encoder scores a (query, passage) pair with a single logit
        architectures=["BertForSequenceClassification"],
        pad_token_id=0,
        # default 0.02 makes a tiny random BERT score every pair alike; wide weights make scores differ by input
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(path)

    tokenizer = transformers.BertTokenizer(
        vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=max_position_embeddings,
    )
    tokenizer.save_pretrained(path)
    return path


def ensure_demo_model(directory: str | os.PathLike) -> Path:
    """The tiny cross-encoder at `directory`, built once (atomically: a half-written model is never reused).

    The sandbox has no model hub, so `--sandbox` runs offer this model to the manifests; building it imports
    torch, reusing it does not.
    """
    path = Path(directory)
    if (path / "config.json").exists():
        return path
    import shutil
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=path.parent))
    try:
        build_tiny_cross_encoder(staging)
        shutil.rmtree(path, ignore_errors=True)
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
