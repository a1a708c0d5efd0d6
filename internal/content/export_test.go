package content

// GroupQueries are the statements a worker runs for every group of documents it processes, by
// the name of their file in sql/.
var GroupQueries = map[string]string{
	"get_documents_with_states": qGetDocumentsWithStates,
	"put_index_states":          qPutIndexStates,
}

// KeyedReads is what runs before each of GroupQueries, in the same transaction.
var KeyedReads = qKeyedReads
