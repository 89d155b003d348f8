"""The fixed chat prompts of every benchmark here: one user message each."""

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the water cycle to a child.",
    "List some facts about the moon.",
    "Write a poem about a city at night.",
    "What makes bread rise?",
    "Tell me about the history of chess.",
    "How do bees make honey?",
    "Describe a walk through a forest in autumn.",
    "Explain why the sky is blue.",
    "Write a letter to a friend about a trip to the sea.",
    "What are volcanoes and how do they form?",
    "Describe how a train station looks in the morning.",
    "Explain what a computer does when it starts.",
    "Write a recipe for a simple soup.",
    "Tell me a story about a lost cat finding its way home.",
]
