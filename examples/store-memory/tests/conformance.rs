//! The whole storage conformance suite, run against this store from outside
//! the zaqar-rs workspace: one test per behaviour, named after the rule.

zaqar_storage_conformance::message_store_suite!(async {
    (zaqar_store_memory::MemoryStore::default(), ())
});

zaqar_storage_conformance::management_store_suite!(async {
    (
        zaqar_store_memory::management::MemoryManagement::default(),
        (),
    )
});
